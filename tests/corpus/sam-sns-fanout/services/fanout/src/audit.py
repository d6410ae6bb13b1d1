def handler(event, context):
    return "audit"
