def handler(event, context):
    return "tick"
