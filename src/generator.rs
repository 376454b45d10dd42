//! The systemd generator: Plan → drop-ins and .wants links over the packaged templates.
