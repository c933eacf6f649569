"""The users tab: list (with two-factor and lock-outs), add, change role, disable/enable, reset password (a
one-time password shown once), sign out everywhere, unlock a locked-out user, reset two-factor — through the
API while the server runs, through the core while it is stopped."""

from __future__ import annotations

import secrets
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from appliance.config.home import Paths
from console.client import ServerClient, local_time
from console.supervisor import Supervisor
from console.tab_support import ServiceTab, button_row, fill_table, item_table, selected_key

ROLES = ("admin", "editor", "viewer")


def one_time_password() -> str:
    """A random password the user must change at the next sign-in."""
    return secrets.token_urlsafe(12)


class AddUserDialog(QDialog):
    def __init__(self, roles: list[str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add a user")
        self.email = QLineEdit()
        self.name = QLineEdit()
        self.role = QComboBox()
        self.role.addItems(roles)
        self.role.setCurrentText("viewer")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Email:", self.email)
        form.addRow("Name:", self.name)
        form.addRow("Role:", self.role)
        form.addRow(buttons)


class UsersTab(ServiceTab):
    """``one_time_password_shown(email, password)`` fires when a new password is shown (once)."""

    one_time_password_shown = Signal(str, str)

    def __init__(self, paths: Paths, client: ServerClient, supervisor: Supervisor, parent: QWidget | None = None):
        super().__init__(paths, client, supervisor, parent)
        self.users: list[dict[str, Any]] = []
        self.roles = list(ROLES)
        # The email column takes the spare width (the id column stays narrow).
        self.table = item_table(
            ["Email", "Name", "Role", "Active", "Created", "Id", "Two-factor", "Locked"], stretch_last=False
        )
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        buttons, self.buttons = button_row(
            (
                ("refresh", "Refresh", self.refresh),
                ("add", "Add…", self.on_add_clicked),
                ("role", "Change role…", self.on_role_clicked),
                ("active", "Disable / enable", self.on_active_clicked),
                ("password", "Reset password", self.on_password_clicked),
                ("sign_out", "Sign out everywhere", self.on_sign_out_clicked),
                ("unlock", "Unlock", self.on_unlock_clicked),
                ("reset_2fa", "Reset two-factor", self.on_reset_two_factor_clicked),
            )
        )
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        self._otp_box: QMessageBox | None = None

    # --- operations (each online or offline) ----------------------------------------

    def refresh(self) -> None:
        def online(client: ServerClient) -> tuple[list[dict], list[str]]:
            users = client.call("GET", "/api/users?page_size=500")["items"]
            roles = [r["name"] for r in client.call("GET", "/api/roles")]
            return users, roles

        def offline(_instance: Any) -> tuple[list[dict], list[str]]:
            from appliance.accounts.roles import list_roles
            from appliance.accounts.two_factor_policy import serialize_users_for_admins
            from appliance.accounts.users import list_users

            return serialize_users_for_admins(list_users()), [r.name for r in list_roles()]

        self.perform(online, offline, self._show, deferrable=True)

    def _show(self, result: tuple[list[dict], list[str]]) -> str | None:
        self.users, roles = result
        self.roles = roles or list(ROLES)
        rows = [
            [
                u["email"],
                u["name"],
                u["role"],
                "yes" if u["active"] else "disabled",
                local_time(u.get("created_at")),
                u["id"],
                "on" if u.get("totp") else "off",
                "locked out" if u.get("locked") else "",
            ]
            for u in self.users
        ]
        fill_table(self.table, rows, [u["id"] for u in self.users])
        self.loaded.emit(self.users)
        return None

    def add_user(self, email: str, name: str, role: str) -> None:
        """Create the user with a one-time password (shown once, to be changed at first sign-in)."""
        password = one_time_password()

        def online(client: ServerClient) -> dict:
            body = {"email": email, "name": name, "role": role, "password": password, "must_change_password": True}
            return client.call("POST", "/api/users", body)

        def offline(_instance: Any) -> dict:
            from appliance.accounts.user_changes import create_user
            from appliance.accounts.users import serialize_user

            return serialize_user(create_user(email, name, role, password, must_change_password=True))

        def done(user: dict) -> str:
            self._show_password(user["email"], password)
            self.refresh()
            return f"Added {user['email']} ({user['role']})."

        self.perform(online, offline, done)

    def _patch(self, user_id: int, changes: dict[str, Any], message: str) -> None:
        def online(client: ServerClient) -> dict:
            return client.call("PATCH", f"/api/users/{user_id}", changes)

        def offline(_instance: Any) -> dict:
            from appliance.accounts.user_changes import set_password, update_user
            from appliance.accounts.users import serialize_user

            fields = {k: v for k, v in changes.items() if k not in ("password", "must_change_password")}
            user = update_user(user_id, fields) if fields else None
            if "password" in changes:
                user = set_password(user_id, changes["password"], must_change=True)
            return serialize_user(user)

        def done(user: dict) -> str:
            self.refresh()
            return message.format(email=user["email"], role=user["role"])

        self.perform(online, offline, done)

    def set_role(self, user_id: int, role: str) -> None:
        self._patch(user_id, {"role": role}, "{email} is now {role}.")

    def set_active(self, user_id: int, active: bool) -> None:
        self._patch(user_id, {"active": active}, "{email} can sign in again." if active else "{email} is disabled.")

    def reset_password(self, user_id: int) -> None:
        password = one_time_password()

        def online(client: ServerClient) -> dict:
            body = {"password": password, "must_change_password": True}
            return client.call("PATCH", f"/api/users/{user_id}", body)

        def offline(_instance: Any) -> dict:
            from appliance.accounts.user_changes import set_password
            from appliance.accounts.users import serialize_user

            return serialize_user(set_password(user_id, password, must_change=True))

        def done(user: dict) -> str:
            self._show_password(user["email"], password)
            return f"{user['email']} has a new one-time password; their sessions were ended."

        self.perform(online, offline, done)

    def sign_out_everywhere(self, user_id: int) -> None:
        """End every session of the user: through the server's admin API while it runs (so its audit names
        the console), through the core while it is stopped."""

        def online(client: ServerClient) -> dict:
            client.call("POST", f"/api/users/{user_id}/sign-out-everywhere", {})
            return client.call("GET", f"/api/users/{user_id}")

        def offline(_instance: Any) -> dict:
            from appliance.accounts.user_changes import sign_out_everywhere
            from appliance.accounts.users import serialize_user

            return serialize_user(sign_out_everywhere(user_id, actor="console"))

        self.perform(online, offline, lambda u: f"{u['email']} was signed out everywhere.")

    def unlock(self, user_id: int) -> None:
        """Lift the user's sign-in lock-out (audited): the admin API while the server runs, the core while stopped."""

        def online(client: ServerClient) -> dict:
            return client.call("POST", f"/api/users/{user_id}/unlock", {})

        def offline(_instance: Any) -> dict:
            from appliance.accounts.user_changes import unlock_user
            from appliance.accounts.users import serialize_user

            return serialize_user(unlock_user(user_id, actor="console"))

        def done(user: dict) -> str:
            self.refresh()
            return f"{user['email']} is unlocked and may sign in again."

        self.perform(online, offline, done)

    def reset_two_factor(self, user_id: int) -> None:
        """Turn the user's two-factor off (a lost phone): they sign in with the password and set it up again."""

        def online(client: ServerClient) -> dict:
            return client.call("POST", f"/api/users/{user_id}/totp/reset", {})

        def offline(_instance: Any) -> dict:
            from appliance.accounts.totp import reset_totp

            user = reset_totp(user_id, actor="console")
            return {"id": user.id, "email": user.email, "totp": False}

        def done(user: dict) -> str:
            self.refresh()
            return f"Two-factor sign-in of {user['email']} is off; they set it up again at their next sign-in."

        self.perform(online, offline, done)

    def _show_password(self, email: str, password: str) -> None:
        """Show the password once, in a box that is not kept: it is never written anywhere."""
        self.one_time_password_shown.emit(email, password)
        box = QMessageBox(self)
        box.setWindowTitle("One-time password")
        box.setText(
            f"The one-time password of {email} is:\n\n{password}\n\n"
            "Give it to them now: it is shown only this once, and they must choose their own at the first sign-in."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setModal(False)
        box.finished.connect(box.deleteLater)
        box.show()
        self._otp_box = box

    # --- buttons --------------------------------------------------------------------

    def _current(self) -> dict | None:
        key = selected_key(self.table)
        user = next((u for u in self.users if u["id"] == key), None)
        if user is None:
            self.message.setText("Select a user first.")
        return user

    def on_add_clicked(self) -> None:
        dialog = AddUserDialog(self.roles, self)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.add_user(dialog.email.text(), dialog.name.text(), dialog.role.currentText())

    def on_role_clicked(self) -> None:
        user = self._current()
        if user is None:
            return
        index = self.roles.index(user["role"]) if user["role"] in self.roles else 0
        role, ok = QInputDialog.getItem(self, "Change role", f"Role of {user['email']}:", self.roles, index, False)
        if ok and role != user["role"]:
            self.set_role(user["id"], role)

    def on_active_clicked(self) -> None:
        user = self._current()
        if user is not None:
            self.set_active(user["id"], not user["active"])

    def on_password_clicked(self) -> None:
        user = self._current()
        if user is None:
            return
        answer = QMessageBox.question(
            self, "Reset password", f"Give {user['email']} a new one-time password and end their sessions?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.reset_password(user["id"])

    def on_sign_out_clicked(self) -> None:
        user = self._current()
        if user is not None:
            self.sign_out_everywhere(user["id"])

    def on_unlock_clicked(self) -> None:
        user = self._current()
        if user is not None:
            self.unlock(user["id"])

    def on_reset_two_factor_clicked(self) -> None:
        user = self._current()
        if user is None:
            return
        answer = QMessageBox.question(
            self,
            "Reset two-factor",
            f"Turn off two-factor sign-in of {user['email']}? They sign in with their password alone and set it up again.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.reset_two_factor(user["id"])
