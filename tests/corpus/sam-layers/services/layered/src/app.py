from shared import greet


def handler(event, context):
    return greet("layer")
