"""Users (admin): who can log in, their roles; add, change role, reset password, deactivate."""

from __future__ import annotations

import streamlit as st

from db.errors import DatabaseInputError
from triage_app import services, ui

admin = ui.require_admin()
backend = ui.backend()

st.title("Users")
table = services.users_frame(backend)
st.dataframe(table, key="users_table", hide_index=True)

add, change = st.columns(2)
with add, st.form("users_add_form", clear_on_submit=True):
    st.subheader("Add a user")
    name = st.text_input("User name", key="users_add_name")
    role = st.selectbox("Role", ["reviewer", "admin"], key="users_add_role")
    password = st.text_input("Initial password", type="password", key="users_add_password")
    if st.form_submit_button("Add user", key="users_add_submit"):
        try:
            services.change_user(backend, admin, "add", name=name, password=password, role=role)
            st.success(f"Added {role} {name}.")
        except DatabaseInputError as error:
            st.error(str(error))

with change:
    st.subheader("Change a user")
    active = table[table["active"]] if not table.empty else table
    chosen = st.selectbox("User", active["name"].tolist(), key="users_change_name")
    action = st.radio("Change", ["role", "password", "deactivate"], horizontal=True, key="users_change_action")
    values: dict[str, object] = {}
    if action == "role":
        values["role"] = st.selectbox("New role", ["reviewer", "admin"], key="users_change_role")
    elif action == "password":
        values["password"] = st.text_input("New password", type="password", key="users_change_password")
    if st.button("Apply", key="users_change_apply") and chosen is not None:
        user_id = int(active.loc[active["name"] == chosen, "id"].iloc[0])
        try:
            services.change_user(backend, admin, action, user_id=user_id, **values)
            st.success(f"{chosen}: {action} changed.")
            st.rerun()
        except DatabaseInputError as error:
            st.error(str(error))
