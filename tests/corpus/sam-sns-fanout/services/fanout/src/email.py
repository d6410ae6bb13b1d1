def handler(event, context):
    return "email"
