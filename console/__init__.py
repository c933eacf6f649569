"""The PySide6 desktop console of Office Appliance."""
