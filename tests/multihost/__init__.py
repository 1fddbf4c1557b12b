"""The multi-host chaos test: "hosts" as Linux network namespaces on this machine."""
