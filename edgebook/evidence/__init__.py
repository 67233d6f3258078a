"""Evidence: the papermill runner, records, manifests, reports and their verification."""
