"""Event sources: where the relay's events come from (adapters, the only boto3 and moto users).

    eventbridge.py  AwsSettings; provision / teardown of the relay's SQS queue and EventBridge
                    rule (found by tag ``hook:relay``); put_events for ``hook send``
    sqs.py          SqsSource: long-polls the queue, commits events, then deletes the messages
    emulator.py     start_emulator(): moto's server on loopback as a local EventBridge + SQS

Local mode and real AWS run the same code; only ``AwsSettings.endpoint_url`` and the
credentials differ. Every botocore exception is translated into ``SourceError`` here.
"""
