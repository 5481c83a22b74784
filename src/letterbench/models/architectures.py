"""The study's three architectures and any timm model, each registered once.

Every builder returns ``(base, head, classifier key)``: a timm ``base`` that maps an image batch to
pooled features, a ``head`` that maps features to class logits, and the name of the classifier a
pretrained file brings (dropped, since the head replaces it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from letterbench.models.registry import register_model
from letterbench.models.spec import EMNIST_MEAN, EMNIST_STD, InputSpec

if TYPE_CHECKING:
    from torch import nn

# The builders import torch and timm when they run: listing, naming and validating models (the
# command line's parser) reads this table without them.

# The normalisation each ImageNet checkpoint was trained with, as timm's pretrained configs give it
# (a test compares them). Spelled out so that listing models does not import timm (seconds).
IMAGENET_NORM = {
    "densenet121.tv_in1k": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "legacy_xception.tf_in1k": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


def _imagenet_input(tag: str, size: int) -> InputSpec:
    mean, std = IMAGENET_NORM[tag]
    return InputSpec(3, size, mean, std)


@register_model(
    name="resnet18",
    display="ResNet-18",
    summary="the study's ResNet-18 variant: 3x3 stride-1 stem + BN + ReLU + 3x3/2 max-pool, "
    "4 stages of 2 basic blocks, GAP + FC, He init",
    input=InputSpec(1, 28, (EMNIST_MEAN,), (EMNIST_STD,)),
    pretrained_tag=None,  # its stem is the report's own: no ImageNet weights fit it
    recipe="resnet18",
)
def resnet18(entry, num_classes, pretrained, dropout):
    """timm's ResNet-18 with the report's stem for 28x28 grayscale: 3x3 stride-1 conv, BN, ReLU,
    3x3/2 max-pool. timm's stock stem (7x7 stride-2 conv) would shrink a 28x28 letter to 7x7
    before the first residual stage; the 3x3 stride-1 stem keeps 14x14 there."""
    import timm
    from torch import nn

    base = timm.create_model("resnet18", pretrained=False, num_classes=0, in_chans=1)
    base.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    # Variance-scaled (He) initialisation, as timm's ResNet uses for every other conv.
    nn.init.kaiming_normal_(base.conv1.weight, mode="fan_out", nonlinearity="relu")
    head = nn.Linear(base.num_features, num_classes)  # the study's plain FC head, no dropout
    return base, head, None


@register_model(
    name="densenet121",
    display="DenseNet-121",
    summary="timm densenet121 (ImageNet tag tv_in1k), dropout + new 26-way layer",
    input=_imagenet_input("densenet121.tv_in1k", 64),
    pretrained_tag="densenet121.tv_in1k",
    recipe="densenet121",
    dropout=0.2,
)
def densenet121(entry, num_classes, pretrained, dropout):
    from torch import nn

    from letterbench.models.weights import timm_base

    base = timm_base(entry.pretrained_tag, pretrained)
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(base.num_features, num_classes))
    return base, head, base.pretrained_cfg["classifier"]


def xception_head(
    features: int, num_classes: int, widths: tuple[int, ...] = (512, 256), dropout: float = 0.5
) -> nn.Module:
    """GAP features -> [Dense + ReLU + Dropout] per width -> Dense(num_classes); softmax is in the loss.

    Defaults 512 and 256: the 2048 pooled Xception features are narrowed in two steps of
    4x and 2x, about 1.2 M head parameters, few enough for a head-only phase on
    ~100 k images not to overfit, wide enough not to bottleneck 26 classes. Dropout 0.5
    is the usual Keras choice for such a head.
    """
    from torch import nn

    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(features, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


@register_model(
    name="xception",
    display="Xception",
    summary="timm legacy_xception (the Keras port, tf_in1k) base; head GAP -> Dense 512 + ReLU + "
    "Dropout -> Dense 256 + ReLU + Dropout -> Dense 26",
    input=_imagenet_input("legacy_xception.tf_in1k", 71),
    pretrained_tag="legacy_xception.tf_in1k",
    recipe="xception",
    dropout=0.5,
)
def xception(entry, num_classes, pretrained, dropout):
    from letterbench.models.weights import timm_base

    base = timm_base(entry.pretrained_tag, pretrained)
    head = xception_head(base.num_features, num_classes, dropout=dropout)
    return base, head, base.pretrained_cfg["classifier"]


@register_model(
    name="smallcnn",
    display="Small CNN",
    summary="a first model in minutes on a CPU: 4 conv-BN-ReLU layers (32, 64, 128, 128 channels) "
    "with two max-pools, GAP + FC; 0.24 M parameters",
    input=InputSpec(1, 28, (EMNIST_MEAN,), (EMNIST_STD,)),
    pretrained_tag=None,
    recipe="smallcnn",
)
def smallcnn(entry, num_classes, pretrained, dropout):
    """Small enough to train at about 1,900 images/s on a 2-core CPU (about 1/20 of ResNet-18's
    cost), deep enough to read letters: 28x28 -> 14x14 -> 7x7, then 128 pooled features."""
    from torch import nn

    layers: list[nn.Module] = []
    channels = 1
    for width, pool in ((32, True), (64, True), (128, False), (128, False)):
        conv = nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        layers += [conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers += [nn.MaxPool2d(2)] if pool else []
        channels = width
    base = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
    return base, head, None
