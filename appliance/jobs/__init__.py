"""Scheduled jobs: definitions and runs (:mod:`.definitions`), running one (:mod:`.runner`), the
built-in jobs (:mod:`.builtin`), the scheduler, alerts and mail.

Importing the package registers the built-in jobs, so that every caller (the
scheduler, the API, the pages, the console, the command line) sees the same
jobs whichever module it imports first.
"""

from appliance.jobs import builtin as builtin
