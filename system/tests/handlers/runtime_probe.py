"""Tiny handlers that let the Lambda runtime tests see what the worker does."""

import json
import logging
import os
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def pid(event, context):
    return {"pid": os.getpid(), "env": {k: os.environ.get(k) for k in event.get("env", [])}}


def hold(event, context):
    time.sleep(event["seconds"])
    return {"pid": os.getpid()}


def chatty(event, context):
    print("printed line")
    logger.info("logged line")
    print(json.dumps({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [
        {"Namespace": "Probe", "Dimensions": [[]], "Metrics": [{"Name": "Things"}]}]},
        "Things": 3}))
    return "done"


def crash(event, context):
    raise ValueError("probe crashed")


def not_json(event, context):
    return object()
