"""Locust load tests of the chat: users, fan-out measurement, load shapes."""
