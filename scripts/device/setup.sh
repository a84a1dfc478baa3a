# Source at the start of a command on the bare GPU machine (device tool), from the repo root:
#   source scripts/device/setup.sh
# Installs the carried cp312 wheels (.whl/), registers the prebuilt gsplat extension
# (.gpu/gsplat_cuda_so.tgz, made by scripts/device/build_gsplat.sh) and unpacks carried subject packs
# (.gpu/<ID>.tar[.gz], made by scripts/pack_subject.py) into data/ (each pack holds one <ID>/ folder).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
if [ -f .gpu/gsplat_cuda_so.tgz ]; then
  mkdir -p /tmp/torch_ext/gsplat_cuda && tar -xzf .gpu/gsplat_cuda_so.tgz -C /tmp/torch_ext/gsplat_cuda
fi
export TORCH_EXTENSIONS_DIR=/tmp/torch_ext MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0
for pack in .gpu/*.tar .gpu/*.tar.gz; do
  [ -f "$pack" ] || continue
  mkdir -p data && tar -xf "$pack" -C data  # the pack holds <ID>/...
done
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
