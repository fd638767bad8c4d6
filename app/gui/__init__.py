"""Qt views. Only this package (and the PDF report) imports PySide6/pyqtgraph."""
