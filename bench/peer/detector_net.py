"""A PyTorch (torch.nn) port of detops' detector network and its inference
pipeline, for the Python serving peer in bench/serve_compare.sh.

Mirrors src/ml/model.cc (DetectorNet: ConvBn, Csp, Sppf, PAN neck, decoupled
heads at strides 8/16/32, DecodeBoxes) and src/ml/inference.cc (letterbox
with grey 114, BGR -> RGB, /255, sigmoid scores, class-wise NMS, conf 0.25,
IoU 0.5, max_det 100), and loads detops weights files as they are: a
LibTorch archive that torch.jit.load reads as a module whose parameters and
buffers are named "p/<name>" and "b/<name>" (checkpoints: "ema/p/...") plus
a "config" string attribute (JSON). bench/peer/check_port.py checks that
this port gives the same detections as `detops predict`.
"""

import json
import math

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

try:  # Debian's python3-torchvision; the fallback is the same greedy NMS.
    from torchvision.ops import batched_nms
except ImportError:  # pragma: no cover
    batched_nms = None

STRIDES = (8, 16, 32)
WIDTHS = {"n": ((16, 32, 48, 96, 160), (1, 1, 1, 1)),
          "s": ((32, 64, 96, 192, 320), (1, 2, 2, 1))}


class ConvBn(nn.Module):
    def __init__(self, cin, cout, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03)

    def forward(self, x):
        return F.silu(self.bn(self.conv(x)))


class Csp(nn.Module):
    def __init__(self, cin, cout, n, shortcut):
        super().__init__()
        c = cout // 2
        self.shortcut = shortcut
        self.n = n
        self.cv1 = ConvBn(cin, 2 * c, 1)
        self.cv2 = ConvBn((2 + n) * c, cout, 1)
        for i in range(n):  # named like the C++ module: b0a, b0b, b1a, ...
            self.add_module(f"b{i}a", ConvBn(c, c, 3))
            self.add_module(f"b{i}b", ConvBn(c, c, 3))

    def forward(self, x):
        ys = list(self.cv1(x).chunk(2, 1))
        for i in range(self.n):
            y = getattr(self, f"b{i}b")(getattr(self, f"b{i}a")(ys[-1]))
            ys.append(ys[-1] + y if self.shortcut else y)
        return self.cv2(torch.cat(ys, 1))


class Sppf(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cv1 = ConvBn(c, c // 2, 1)
        self.cv2 = ConvBn(c * 2, c, 1)

    def forward(self, x):
        a = self.cv1(x)
        b = F.max_pool2d(a, 5, 1, 2)
        c = F.max_pool2d(b, 5, 1, 2)
        return self.cv2(torch.cat([a, b, c, F.max_pool2d(c, 5, 1, 2)], 1))


class DetectorNet(nn.Module):
    def __init__(self, variant="n", num_classes=1):
        super().__init__()
        c, d = WIDTHS[variant]
        self.num_classes = num_classes
        self.stem = nn.Sequential(ConvBn(3, c[0], 3, 2))
        self.s1 = nn.Sequential(ConvBn(c[0], c[1], 3, 2), Csp(c[1], c[1], d[0], True))
        self.s2 = nn.Sequential(ConvBn(c[1], c[2], 3, 2), Csp(c[2], c[2], d[1], True))
        self.s3 = nn.Sequential(ConvBn(c[2], c[3], 3, 2), Csp(c[3], c[3], d[2], True))
        self.s4 = nn.Sequential(ConvBn(c[3], c[4], 3, 2), Csp(c[4], c[4], d[3], True), Sppf(c[4]))
        self.top4 = Csp(c[4] + c[3], c[3], d[0], False)
        self.top3 = Csp(c[3] + c[2], c[2], d[0], False)
        self.red3 = ConvBn(c[2], c[2], 3, 2)
        self.down4 = Csp(c[2] + c[3], c[3], d[0], False)
        self.red4 = ConvBn(c[3], c[3], 3, 2)
        self.down5 = Csp(c[3] + c[4], c[4], d[0], False)
        level_c = (c[2], c[3], c[4])
        hidden = c[2]
        self.cls_heads = nn.ModuleList(
            nn.Sequential(ConvBn(lc, hidden, 3), ConvBn(hidden, hidden, 3)) for lc in level_c)
        self.box_heads = nn.ModuleList(
            nn.Sequential(ConvBn(lc, hidden, 3), ConvBn(hidden, hidden, 3)) for lc in level_c)
        self.cls_out = nn.ModuleList(nn.Conv2d(hidden, num_classes, 1) for _ in level_c)
        self.box_out = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in level_c)

    def forward(self, x):
        """Returns logits [B, A, C] and box [B, A, 4] (dx, dy, log w, log h)."""
        c3 = self.s2(self.s1(self.stem(x)))
        c4 = self.s3(c3)
        c5 = self.s4(c4)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        t4 = self.top4(torch.cat([up(c5), c4], 1))
        p3 = self.top3(torch.cat([up(t4), c3], 1))
        p4 = self.down4(torch.cat([self.red3(p3), t4], 1))
        p5 = self.down5(torch.cat([self.red4(p4), c5], 1))
        b = x.shape[0]
        logits, boxes = [], []
        for i, level in enumerate((p3, p4, p5)):
            cl = self.cls_out[i](self.cls_heads[i](level))
            bx = self.box_out[i](self.box_heads[i](level))
            logits.append(cl.permute(0, 2, 3, 1).reshape(b, -1, self.num_classes))
            boxes.append(bx.permute(0, 2, 3, 1).reshape(b, -1, 4))
        return torch.cat(logits, 1), torch.cat(boxes, 1)


def make_grid(size):
    """Location centres [A, 2] (x, y) in pixels and strides [A]."""
    centers, strides = [], []
    for s in STRIDES:
        n = size // s
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        centers.append(torch.stack([(xs + 0.5) * s, (ys + 0.5) * s], -1).reshape(-1, 2))
        strides.append(torch.full((n * n,), float(s)))
    return torch.cat(centers).float(), torch.cat(strides)


def decode_boxes(box, centers, strides):
    s = strides.view(1, -1, 1)
    xy = centers.unsqueeze(0) + box[..., :2] * s
    wh = torch.exp(box[..., 2:].clamp(-8.0, 8.0)) * s
    return torch.cat([xy - wh / 2, xy + wh / 2], 2)


def load_weights(path):
    """Reads a detops weights file (or checkpoint): (config dict, state dict)."""
    archive = torch.jit.load(path, map_location="cpu")
    config = json.loads(getattr(archive, "config"))
    names = dict(archive.named_parameters())
    names.update(archive.named_buffers())
    prefix = "ema/" if any(k.startswith("ema/") for k in names) else ""
    state = {}
    for key, t in names.items():
        for kind in ("p/", "b/"):
            if key.startswith(prefix + kind):
                state[key[len(prefix + kind):]] = t.detach().clone()
    return config, state


def nms(boxes, scores, classes, iou):
    if batched_nms is not None:
        return batched_nms(boxes, scores, classes, iou)
    # Greedy class-wise NMS in torch (boxes sorted by score already).
    shifted = boxes + classes.unsqueeze(1).float() * (boxes.max() + 1)
    keep, removed = [], torch.zeros(len(boxes), dtype=torch.bool)
    area = (shifted[:, 2] - shifted[:, 0]).clamp(min=0) * (shifted[:, 3] - shifted[:, 1]).clamp(min=0)
    for i in range(len(boxes)):
        if removed[i]:
            continue
        keep.append(i)
        lt = torch.maximum(shifted[i, :2], shifted[:, :2])
        rb = torch.minimum(shifted[i, 2:], shifted[:, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[:, 0] * wh[:, 1]
        removed |= inter / (area[i] + area - inter + 1e-9) > iou
    return torch.tensor(keep, dtype=torch.long)


class Detector:
    """The network loaded from a detops weights file, with the same pre- and
    post-processing as detops' Detector::Predict. Not thread-safe."""

    def __init__(self, weights_path, conf=0.25, iou=0.5, max_det=100, precision="fp32"):
        """precision "bf16": the forward pass under torch.autocast("cpu",
        torch.bfloat16), the one-line mixed precision PyTorch documents."""
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {precision!r}")
        self.precision = precision
        config, state = load_weights(weights_path)
        self.classes = config["classes"]
        self.imgsz = int(config["imgsz"])
        self.net = DetectorNet(config["variant"], len(self.classes))
        self.net.load_state_dict(state, strict=True)
        self.net.eval()
        self.centers, self.strides = make_grid(self.imgsz)
        self.conf, self.iou, self.max_det = conf, iou, max_det

    def letterbox(self, image):
        """BGR image -> size x size BGR canvas (grey 114), scale, pad x, pad y."""
        size = self.imgsz
        h0, w0 = image.shape[:2]
        s = size / max(w0, h0)
        w = max(1, int(math.floor(w0 * s + 0.5)))
        h = max(1, int(math.floor(h0 * s + 0.5)))
        out = np.full((size, size, 3), 114, np.uint8)
        px, py = (size - w) // 2, (size - h) // 2
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        out[py:py + h, px:px + w] = cv2.resize(image, (w, h), interpolation=interp)
        return out, s, px, py

    def predict(self, images):
        """BGR uint8 images -> per image a list of detection dicts."""
        geo, batch = [], []
        for img in images:
            lb, s, px, py = self.letterbox(img)
            geo.append((s, px, py, img.shape[1], img.shape[0]))
            batch.append(lb)
        with torch.inference_mode():
            x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).flip(1).float().div_(255.0)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                logits, box = self.net(x)
            logits, box = logits.float(), box.float()
            scores = torch.sigmoid(logits)
            boxes = decode_boxes(box, self.centers, self.strides)
            return [self._postprocess(scores[i], boxes[i], geo[i]) for i in range(len(images))]

    def _postprocess(self, scores, boxes, geo):
        loc, cls = (scores > self.conf).nonzero(as_tuple=True)
        if loc.numel() == 0:
            return []
        sc = scores[loc, cls]
        top, order = sc.topk(min(sc.numel(), 3000))
        loc, cls = loc[order], cls[order]
        bx = boxes[loc]
        keep = nms(bx, top, cls, self.iou)
        s, px, py, w, h = geo
        out = []
        for k in keep.tolist():
            if len(out) >= self.max_det:
                break
            x1, y1, x2, y2 = bx[k].tolist()
            x1 = min(max((x1 - px) / s, 0.0), w)
            x2 = min(max((x2 - px) / s, 0.0), w)
            y1 = min(max((y1 - py) / s, 0.0), h)
            y2 = min(max((y2 - py) / s, 0.0), h)
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            c = int(cls[k])
            out.append({"box": [x1, y1, x2, y2],
                        "class": self.classes[c] if c < len(self.classes) else "",
                        "class_id": c, "score": float(top[k])})
        return out
