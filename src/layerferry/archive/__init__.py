"""Image archives: the combined docker-archive + OCI layout writer, encoders, readers.

Import the modules themselves (``writer``, ``encoding``, ``read``…): nothing is re-exported
here, so importing one leaf never drags in the rest (see ``layerferry.copy``).
"""
