"""The local AWS stack: DynamoDB, an API Gateway WebSocket emulator, Lambda workers."""
