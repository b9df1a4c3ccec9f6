"""Keras' keras.applications.Xception graph in plain PyTorch (torch.nn).

Layer for layer as Keras builds it: the same convolutions, separable convolutions, batch norms
(epsilon 1e-3, Keras' momentum 0.99), max pools and residual additions, with TensorFlow's 'same'
padding: out = ceil(in / stride), pad_total = max((out - 1) * stride + k - in, 0), pad_total // 2
before and the rest after (one extra pixel after when pad_total is odd). Max pools pad with -inf,
as TensorFlow's do. The model returns the classifier's logits; Keras' softmax is applied by the caller.

Parameter count: 22,910,480 including the batch norms' moving mean and variance, 22,855,952
trainable, as Keras' model.summary() reports for Xception(weights=None).

Xception(segments=K) is the paper's segments variant that `xception study segments` trains: every
separable convolution's depthwise 3x3 becomes a 3x3 convolution in K channel groups (Conv2d(groups=K);
1 is a regular convolution); segments=0, the default, is the depthwise model above.

    python3 tools/peers/xception_torch.py        # prints the parameter counts and checks them
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

KERAS_TOTAL_PARAMS = 22_910_480
KERAS_TRAINABLE_PARAMS = 22_855_952
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch's momentum is 1 - Keras' (0.99)


def same_pads(size, k, stride):
    """TensorFlow 'same' padding for one dimension: (before, after)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


class SamePad(nn.Module):
    """Pads H and W as TensorFlow's 'same' does for a k x k window at the given stride."""

    def __init__(self, k, stride, value=0.0):
        super().__init__()
        self.k, self.stride, self.value = k, stride, value

    def forward(self, x):
        top, bottom = same_pads(x.shape[-2], self.k, self.stride)
        left, right = same_pads(x.shape[-1], self.k, self.stride)
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom), value=self.value)


def conv_same(cin, cout, k, stride=1, groups=1):
    """Conv2D(k, strides, padding='same', use_bias=False)."""
    return nn.Sequential(SamePad(k, stride), nn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=False))


def bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class SeparableConv2d(nn.Module):
    """SeparableConv2D(cout, 3, padding='same', use_bias=False): depthwise 3x3 then pointwise 1x1
    (the 3x3 in `segments` channel groups instead where segments > 0)."""

    def __init__(self, cin, cout, segments=0):
        super().__init__()
        self.depthwise = conv_same(cin, cin, 3, groups=segments or cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def max_pool_same():
    """MaxPooling2D((3, 3), strides=(2, 2), padding='same')."""
    return nn.Sequential(SamePad(3, 2, value=float("-inf")), nn.MaxPool2d(3, 2))


class EntryBlock(nn.Module):
    """Blocks 2, 3, 4 and 13: a strided 1x1 shortcut beside two separable convolutions and a max pool."""

    def __init__(self, cin, c1, c2, relu_first, segments=0):
        super().__init__()
        self.shortcut = nn.Sequential(conv_same(cin, c2, 1, 2), bn(c2))
        layers = [nn.ReLU()] if relu_first else []
        layers += [SeparableConv2d(cin, c1, segments), bn(c1), nn.ReLU(), SeparableConv2d(c1, c2, segments), bn(c2),
                   max_pool_same()]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x) + self.shortcut(x)


class MiddleBlock(nn.Module):
    """Blocks 5 to 12: x + 3 x [ReLU, SeparableConv 728, BN]."""

    def __init__(self, c=728, segments=0):
        super().__init__()
        layers = []
        for _ in range(3):
            layers += [nn.ReLU(), SeparableConv2d(c, c, segments), bn(c)]
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.main(x)


class Xception(nn.Module):
    def __init__(self, classes=1000, segments=0):
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 0, bias=False), bn(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 0, bias=False), bn(64), nn.ReLU(),
        )
        self.block2 = EntryBlock(64, 128, 128, relu_first=False, segments=segments)
        self.block3 = EntryBlock(128, 256, 256, relu_first=True, segments=segments)
        self.block4 = EntryBlock(256, 728, 728, relu_first=True, segments=segments)
        self.middle = nn.Sequential(*[MiddleBlock(728, segments) for _ in range(8)])
        self.block13 = EntryBlock(728, 728, 1024, relu_first=True, segments=segments)
        self.block14 = nn.Sequential(
            SeparableConv2d(1024, 1536, segments), bn(1536), nn.ReLU(),
            SeparableConv2d(1536, 2048, segments), bn(2048), nn.ReLU(),
        )
        self.predictions = nn.Linear(2048, classes)
        self._keras_init()

    def _keras_init(self):
        """Keras' initializers: Glorot uniform kernels, zero biases, BN gamma 1, beta 0, mean 0, variance 1."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = m.weight
                receptive = w[0][0].numel() if w.dim() > 2 else 1
                if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels:
                    # Keras' depthwise kernel (kh, kw, cin, 1): fan_in = kh*kw*cin, fan_out = kh*kw
                    fan_in, fan_out = m.in_channels * receptive, receptive
                else:
                    fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                nn.init.uniform_(w, -limit, limit)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x)
        x = self.block4(x)
        x = self.middle(x)
        x = self.block13(x)
        x = self.block14(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.predictions(x)


def parameter_counts(model):
    """(total, trainable) as Keras counts them: parameters plus BN moving mean and variance."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for name, b in model.named_buffers()
                if name.endswith("running_mean") or name.endswith("running_var"))
    return params + stats, trainable


def check_parameter_counts(model):
    total, trainable = parameter_counts(model)
    assert total == KERAS_TOTAL_PARAMS, f"total parameters {total:,} != Keras' {KERAS_TOTAL_PARAMS:,}"
    assert trainable == KERAS_TRAINABLE_PARAMS, \
        f"trainable parameters {trainable:,} != Keras' {KERAS_TRAINABLE_PARAMS:,}"
    return total, trainable


def _self_check():
    model = Xception().eval()
    total, trainable = check_parameter_counts(model)
    print(f"Xception (PyTorch): {total:,} parameters ({trainable:,} trainable, "
          f"{total - trainable:,} non-trainable), as Keras")
    shapes = []
    for size in (71, 299):
        x = torch.zeros(1, 3, size, size)
        with torch.inference_mode():
            y = model(x)
        shapes.append(f"{size}x{size} -> {tuple(y.shape)}")
    # TF 'same' padding checks: 299 -> block1 147 -> pools 74, 37, 19 -> block13 10
    with torch.inference_mode():
        h = model.block1(torch.zeros(1, 3, 299, 299))
        sizes = [h.shape[-1]]
        for blk in (model.block2, model.block3, model.block4, model.block13):
            h = blk(h) if blk is not model.block13 else blk(model.middle(h))
            sizes.append(h.shape[-1])
    assert sizes == [147, 74, 37, 19, 10], sizes
    print("forward: " + ", ".join(shapes) + f"; spatial sizes at 299: {sizes}")


if __name__ == "__main__":
    _self_check()
