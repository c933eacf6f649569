"""Automation rules: "when a record changes (or every day at a time), for the records matching a filter,
do these actions" — send an email, call a webhook URL, set fields of the record.

:mod:`.rules` keeps the rules (checked once, the same for the API and the pages), :mod:`.matching` the
filters (the Listing's own language, with relative dates), :mod:`.templates` the mail templates,
:mod:`.actions` what each action does (or would do, for a test run), :mod:`.engine` runs them from the
outbox in the scheduler's process, with the loop guard, the mail cap and the run log.
"""
