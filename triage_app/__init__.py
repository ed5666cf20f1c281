"""The `stalltriage` command line and the Streamlit review app."""
