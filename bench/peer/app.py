"""The serving peer: detops' network served the way a Python user would
serve it, with Flask under gunicorn (Debian's python3-flask, python3-torch,
gunicorn, python3-opencv). POST /v1/predict takes a raw image body and
answers {"detections": [...]} like detops' server; GET /readyz answers 200.

Configured by the environment (bench/peer/gunicorn.conf.py sets the rest):
  PEER_WEIGHTS        detops weights file (required)
  PEER_TORCH_THREADS  torch intra-op threads per worker (default 1)
  PEER_PRECISION      fp32 (default) or bf16 (forward under torch.autocast)
"""

import os
import sys
import time

import cv2
import numpy as np
import torch
from flask import Flask, jsonify, request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from detector_net import Detector  # noqa: E402

torch.set_num_threads(int(os.environ.get("PEER_TORCH_THREADS", "1")))
detector = Detector(os.environ["PEER_WEIGHTS"], precision=os.environ.get("PEER_PRECISION", "fp32"))
# Warm-up: the first forward picks oneDNN kernels.
detector.predict([np.full((480, 640, 3), 114, np.uint8)])

app = Flask(__name__)


@app.get("/readyz")
def readyz():
    return "ok\n"


@app.post("/v1/predict")
def predict():
    start = time.perf_counter()
    body = request.get_data()
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return jsonify(error="not a decodable image"), 415
    detections = detector.predict([image])[0]
    return jsonify(detections=detections, model="peer",
                   latency_ms=(time.perf_counter() - start) * 1000)
