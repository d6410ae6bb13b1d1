import os


def handler(event, context):
    return {"greeter": os.environ["GREETER_FUNCTION"], "queue": os.environ["QUEUE_ARN"]}
