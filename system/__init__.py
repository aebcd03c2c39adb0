"""chat-harness: the chat system under test, its provisioning, and the local AWS stack."""
