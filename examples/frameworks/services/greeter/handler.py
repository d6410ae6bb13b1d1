import json
import os


def greet(event, context):
    return {"statusCode": 200,
            "body": json.dumps({"greeting": os.environ["GREETING"],
                                "queue": os.environ["QUEUE_URL"]})}
