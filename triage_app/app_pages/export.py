"""Export (admin): the final labels with their provenance, as CSV or Parquet."""

from __future__ import annotations

import functools

import streamlit as st

from triage_app import services, ui

admin = ui.require_admin()
backend = ui.backend()

st.title("Export")
st.write("One row per stack: the final label and where it came from (human reviews, the model under the "
         "active policy, or the crowd), the model's probability and spread, the thresholds, the number of "
         "reviews, their agreement and the reviewers. Every download is recorded in the audit log.")
left, right = st.columns(2)
csv = functools.partial(services.export_bytes, backend, suffix=".csv", actor=admin.name)
parquet = functools.partial(services.export_bytes, backend, suffix=".parquet", actor=admin.name)
left.download_button("Download CSV", data=csv,
                     file_name="stalltriage-labels.csv", mime="text/csv", key="export_csv", on_click="ignore",
                     type="primary")
right.download_button("Download Parquet", data=parquet,
                      file_name="stalltriage-labels.parquet", mime="application/vnd.apache.parquet",
                      key="export_parquet", on_click="ignore")
