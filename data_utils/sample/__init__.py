"""The built-in sample subject's parts: portrait (the photo), speech (eSpeak NG), warp (TPS fields),
rig (the 2-D face rig), timeline (per-frame animation). data_utils/sample_subject.py puts them together."""
