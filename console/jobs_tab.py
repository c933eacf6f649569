"""The jobs tab: every scheduled job with its last and next run and outcome; run now, enable/disable,
edit the schedule (checked before it is sent) and the run history."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QInputDialog,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from appliance.config.home import Paths
from appliance.config.schedules import schedule_problem
from appliance.jobs.definitions import (
    ensure_jobs,
    get_job,
    job_items,
    last_runs,
    list_runs,
    request_run,
    serialize_job,
    serialize_run,
    update_job,
)
from console.client import ServerClient, local_time
from console.dashboard import describe_age
from console.supervisor import Supervisor
from console.tab_support import ServiceTab, button_row, fill_table, item_table, selected_key


class JobsTab(ServiceTab):
    def __init__(self, paths: Paths, client: ServerClient, supervisor: Supervisor, parent: QWidget | None = None):
        super().__init__(paths, client, supervisor, parent)
        self.jobs: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.table = item_table(["Job", "Schedule", "Enabled", "Last run", "Outcome", "Next run"])
        self.table.itemSelectionChanged.connect(self.on_selection_changed)
        self.history = QTableWidget(0, 5)
        self.history.setHorizontalHeaderLabels(["Started", "Trigger", "Outcome", "Seconds", "Message"])
        self.history.horizontalHeader().setStretchLastSection(True)
        buttons, self.buttons = button_row(
            (
                ("refresh", "Refresh", self.refresh),
                ("run", "Run now", self.on_run_clicked),
                ("enabled", "Enable / disable", self.on_enabled_clicked),
                ("schedule", "Edit schedule…", self.on_schedule_clicked),
            )
        )
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.message)
        layout.addWidget(self.history, 1)

    def refresh(self) -> None:
        def online(client: ServerClient) -> list[dict]:
            return client.call("GET", "/api/jobs?page_size=500")["items"]

        def offline(instance: Any) -> list[dict]:
            ensure_jobs(instance.settings)
            return job_items()

        self.perform(online, offline, self._show, deferrable=True)

    def _show(self, jobs: list[dict[str, Any]]) -> None:
        self.jobs = jobs
        rows = []
        for job in jobs:
            last = job.get("last_run")
            started = last.get("started_at") if isinstance(last, dict) else last
            rows.append(
                [
                    job["name"],
                    job["schedule"],
                    "yes" if job["enabled"] else "no",
                    describe_age(started),
                    job.get("last_outcome") or "—",
                    describe_age(job.get("next_run")) if job["enabled"] else "disabled",
                ]
            )
        fill_table(self.table, rows, [j["name"] for j in jobs])
        self.loaded.emit(jobs)

    # --- operations -------------------------------------------------------------------

    def change(self, name: str, changes: dict[str, Any]) -> bool:
        """Send ``changes`` (schedule, enabled); a schedule is checked here first. ``False`` when refused at once."""
        if "schedule" in changes:
            problem = schedule_problem(changes["schedule"])
            if problem:
                self.message.setText(f"⚠ The schedule '{changes['schedule']}' is refused: {problem}")
                self.failed.emit(self.message.text())
                return False

        def online(client: ServerClient) -> dict:
            return client.call("PATCH", f"/api/jobs/{name}", changes)

        def offline(_instance: Any) -> dict:
            update_job(name, changes)
            return serialize_job(get_job(name), last_runs([name]).get(name))

        def done(job: dict) -> str:
            self.refresh()
            state = "enabled" if job["enabled"] else "disabled"
            return f"{name}: schedule {job['schedule']}, {state}."

        self.perform(online, offline, done)
        return True

    def run_now(self, name: str) -> None:
        def online(client: ServerClient) -> dict:
            return client.call("POST", f"/api/jobs/{name}/run", {})

        def offline(_instance: Any) -> dict:
            request_run(name)
            return {}

        def done(_job: dict) -> str:
            self.refresh()
            if self.online:
                return f"{name} was asked to run; it shows in the history within seconds."
            return f"{name} will run as soon as the server starts."

        self.perform(online, offline, done)

    def load_history(self, name: str) -> None:
        def online(client: ServerClient) -> list[dict]:
            return client.call("GET", f"/api/jobs/{name}/runs?page_size=50")["items"]

        def offline(_instance: Any) -> list[dict]:
            return [serialize_run(run) for run in list_runs(name).limit(50)]

        def done(runs: list[dict]) -> None:
            self.runs = runs
            rows = [
                [local_time(r["started_at"]), r["trigger"], r["outcome"], r.get("duration_seconds"), r.get("message")]
                for r in runs
            ]
            fill_table(self.history, rows, [r["id"] for r in runs])
            return None

        self.perform(online, offline, done, deferrable=True)

    # --- buttons ----------------------------------------------------------------------

    def _current(self) -> dict | None:
        name = selected_key(self.table)
        job = next((j for j in self.jobs if j["name"] == name), None)
        if job is None:
            self.message.setText("Select a job first.")
        return job

    def on_selection_changed(self) -> None:
        name = selected_key(self.table)
        if name:
            self.load_history(name)

    def on_run_clicked(self) -> None:
        job = self._current()
        if job:
            self.run_now(job["name"])

    def on_enabled_clicked(self) -> None:
        job = self._current()
        if job:
            self.change(job["name"], {"enabled": not job["enabled"]})

    def on_schedule_clicked(self) -> None:
        job = self._current()
        if job is None:
            return
        text, ok = QInputDialog.getText(
            self,
            "Edit schedule",
            f"Schedule of {job['name']} (cron 'minute hour day month weekday', or 'every 6h'):",
            text=job["schedule"],
        )
        if ok and text.strip() != job["schedule"]:
            self.change(job["name"], {"schedule": text.strip()})
