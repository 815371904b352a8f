"""One module per pipeline, each composing the platform's components into one end-to-end flow."""
