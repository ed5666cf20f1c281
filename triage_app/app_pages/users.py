"""Users (admin): who can log in, their roles; add, change role, reset password, deactivate.

Role changes and deactivations ask for confirmation; the last active admin cannot be demoted or
deactivated (``db.users`` refuses it, whoever asks); every change is audited and listed below.
"""

from __future__ import annotations

import streamlit as st

from db.errors import DatabaseInputError
from triage_app import services, ui

ADD_FIELDS = ("users_add_name", "users_add_password")
PENDING = "users_pending"
NOTICE = "users_notice"


def _add(backend: services.Backend, admin: services.SessionUser) -> None:
    """Add the user in the form; the form is cleared only when that worked (so a typo is fixable)."""
    name, role = st.session_state["users_add_name"], st.session_state["users_add_role"]
    try:
        services.change_user(backend, admin, "add", name=name, password=st.session_state["users_add_password"],
                             role=role)
    except DatabaseInputError as error:
        st.session_state[NOTICE] = ("error", str(error))
        return
    st.session_state[NOTICE] = ("success", f"Added {role} {name}.")
    for key in ADD_FIELDS:
        st.session_state[key] = ""


def _apply(backend: services.Backend, admin: services.SessionUser, change: dict) -> None:
    st.session_state.pop(PENDING, None)
    values = {k: v for k, v in change.items() if k in ("role", "password")}
    try:
        services.change_user(backend, admin, change["action"], user_id=change["user_id"], **values)
    except DatabaseInputError as error:
        st.session_state[NOTICE] = ("error", str(error))
        return
    st.session_state[NOTICE] = ("success", f"{change['name']}: {change['summary']}.")
    st.session_state.pop("users_change_password", None)


def add_form(backend: services.Backend, admin: services.SessionUser) -> None:
    """The "Add a user" form."""
    with st.form("users_add_form", clear_on_submit=False):
        st.subheader("Add a user")
        st.text_input("User name", key="users_add_name")
        st.selectbox("Role", ["reviewer", "admin"], key="users_add_role")
        st.text_input("Initial password", type="password", key="users_add_password")
        st.form_submit_button("Add user", key="users_add_submit", on_click=_add, args=(backend, admin))


def _describe(row, action: str, values: dict) -> str:  # noqa: ANN001 - a pandas row
    if action == "role":
        return f"role {row['role']} → {values['role']}"
    return "password replaced (their sessions end)" if action == "password" else "deactivated (their sessions end)"


def change_form(backend: services.Backend, admin: services.SessionUser, table) -> None:  # noqa: ANN001
    """"Change a user": pick a user (none preselected), an action, then confirm role changes and deactivations."""
    st.subheader("Change a user")
    active = table[table["active"]] if not table.empty else table
    chosen = st.selectbox("User", active["name"].tolist(), index=None, placeholder="Choose a user",
                          key="users_change_name")
    action = st.radio("Change", ["role", "password", "deactivate"], horizontal=True, key="users_change_action")
    if chosen is None:
        return
    row = active.loc[active["name"] == chosen].iloc[0]
    values: dict[str, object] = {}
    if action == "role":
        roles = ["reviewer", "admin"]
        values["role"] = st.selectbox("New role", roles, index=roles.index(row["role"]) ^ 1,
                                      key=f"users_change_role_{row['id']}")
    elif action == "password":
        values["password"] = st.text_input("New password", type="password", key="users_change_password")
    change = {"action": action, "user_id": int(row["id"]), "name": chosen, **values,
              "summary": _describe(row, action, values)}
    if action == "password":
        st.button("Apply", key="users_change_apply", on_click=_apply, args=(backend, admin, change))
    elif st.button("Apply…", key="users_change_apply"):
        st.session_state[PENDING] = change


def confirm_pending(backend: services.Backend, admin: services.SessionUser) -> None:
    """Ask before a role change or a deactivation is applied."""
    change = st.session_state.get(PENDING)
    if change is None:
        return
    note = " You will lose the admin pages." if change["user_id"] == admin.id else ""
    st.warning(f"Confirm: {change['name']}: {change['summary']}?{note}")
    left, right = st.columns(2)
    left.button("Confirm", key="users_confirm", type="primary", on_click=_apply, args=(backend, admin, change))
    right.button("Cancel", key="users_cancel", on_click=lambda: st.session_state.pop(PENDING, None))


def show() -> None:
    """The page."""
    admin = ui.require_admin()
    backend = ui.backend()
    st.title("Users")
    notice = st.session_state.pop(NOTICE, None)
    if notice is not None:
        getattr(st, notice[0])(notice[1])
    table = services.users_frame(backend)
    st.dataframe(table, key="users_table", hide_index=True)
    add, change = st.columns(2)
    with add:
        add_form(backend, admin)
    with change:
        change_form(backend, admin, table)
        confirm_pending(backend, admin)
    st.subheader("Recent changes")
    st.dataframe(services.user_audit_frame(backend), key="users_audit", hide_index=True)


show()
