def handler(event, context):
    return {"approved": True, **event}
