"""Webhooks: record events sent, signed as Standard Webhooks specify, to receivers an admin sets up.

``definitions`` holds the webhooks themselves, ``addresses`` the checks of
their URLs, ``signing`` the secrets and signatures, ``deliveries`` the
delivery rows made from the outbox and their retries, ``sending`` one HTTP
attempt, and ``dispatcher`` the loop that runs in the server's parent process.
"""
