"""Stand-in for ``google.colab.output``: widget-manager switches are no-ops outside Colab."""


def enable_custom_widget_manager() -> None:
    """Colab: render third-party widgets. Nothing to do in a plain Jupyter kernel."""


def disable_custom_widget_manager() -> None:
    """Colab: back to the built-in widget manager. Nothing to do here."""
