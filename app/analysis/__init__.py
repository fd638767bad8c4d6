"""Clinical analysis of Medius sessions (Qt-free): MVIC references, repetitions, ratios, symmetry, fatigue,
signal quality and trends over sessions. The GUI, the CLI and the PDF report all show these numbers."""
