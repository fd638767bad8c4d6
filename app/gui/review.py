"""The session review tab: pick a recorded session, read its clinician's report, export it.

The report is made by ``medius report`` in a child process, so the window shows exactly the numbers the
command line gives, and a long analysis never stalls the live view's timer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtPdf import QPdfDocument
from PySide6.QtPdfWidgets import QPdfView
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QSplitter, QVBoxLayout, QWidget)

REPORT_TIMEOUT_S = 600


def medius_command(*args: str) -> list[str]:
    """The command line that runs ``medius ARGS`` with this interpreter."""
    return [sys.executable, "-m", "app.cli", *args]


class ReviewPanel(QWidget):
    """Sessions in the recordings folder on the left, the selected session's report on the right."""

    def __init__(self, recordings_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recordings_dir = Path(recordings_dir)
        self._tmp = Path(tempfile.mkdtemp(prefix="medius-review-"))
        self._job: tuple[subprocess.Popen, Path, Path, float] | None = None  # process, session, pdf, started
        self.current: Path | None = None

        self.sessions = QListWidget()
        self.sessions.itemSelectionChanged.connect(self._selected)
        open_button = QPushButton("Open session file…")
        open_button.clicked.connect(self._open_file)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.addWidget(QLabel(f"Sessions in {self.recordings_dir}"))
        ll.addWidget(self.sessions, 1)
        ll.addWidget(open_button)

        self.status = QLabel("Select a session to see its report.")
        self.status.setWordWrap(True)
        self.save_pdf = QPushButton("Save report as PDF…")
        self.save_pdf.clicked.connect(self._save_pdf)
        self.export_csv = QPushButton("Export session CSV…")
        self.export_csv.clicked.connect(self._export_csv)
        for b in (self.save_pdf, self.export_csv):
            b.setEnabled(False)
        bar = QHBoxLayout()
        bar.addWidget(self.status, 1)
        bar.addWidget(self.save_pdf)
        bar.addWidget(self.export_csv)
        self.document = QPdfDocument(self)
        self.view = QPdfView()
        self.view.setDocument(self.document)
        self.view.setPageMode(QPdfView.PageMode.MultiPage)
        self.view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addLayout(bar)
        rl.addWidget(self.view, 1)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 4)
        split.setSizes([280, 1100])
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self._poll = QTimer(self)
        self._poll.setInterval(100)
        self._poll.timeout.connect(self._check_job)
        self.refresh()

    def refresh(self) -> None:
        """List the ``.medius`` files of the recordings folder, newest first."""
        self.sessions.clear()
        files = sorted(self.recordings_dir.glob("*.medius"), key=lambda p: p.stat().st_mtime, reverse=True)
        for path in files:
            item = QListWidgetItem(path.name)
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            self.sessions.addItem(item)

    def select(self, path: Path) -> None:
        """Show ``path``'s report (listing it if it is not in the recordings folder)."""
        path = Path(path)
        for row in range(self.sessions.count()):
            if Path(self.sessions.item(row).data(Qt.ItemDataRole.UserRole)) == path:
                self.sessions.setCurrentRow(row)
                return
        item = QListWidgetItem(path.name)
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        self.sessions.insertItem(0, item)
        self.sessions.setCurrentRow(0)

    def _selected(self) -> None:
        items = self.sessions.selectedItems()
        if items:
            self._start_report(Path(items[0].data(Qt.ItemDataRole.UserRole)))

    def _open_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open session", str(self.recordings_dir), "Medius sessions (*.medius)")
        if name:
            self.select(Path(name))

    def _start_report(self, session: Path) -> None:
        if self._job is not None:
            self._job[0].kill()
        self.current = None
        self.document.close()
        for b in (self.save_pdf, self.export_csv):
            b.setEnabled(False)
        pdf = self._tmp / f"{session.stem}.pdf"
        proc = subprocess.Popen(medius_command("report", str(session), "--pdf", str(pdf)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._job = (proc, session, pdf, time.monotonic())
        self.status.setText(f"Analysing {session.name}…")
        self._poll.start()

    def _check_job(self) -> None:
        if self._job is None:
            self._poll.stop()
            return
        proc, session, pdf, started = self._job
        if proc.poll() is None:
            if time.monotonic() - started > REPORT_TIMEOUT_S:
                proc.kill()
            return
        self._poll.stop()
        self._job = None
        err = proc.stderr.read().strip() if proc.stderr else ""
        if proc.returncode != 0 or not pdf.exists():
            last = err.splitlines()[-1] if err else f"exit code {proc.returncode}"
            self.status.setText(f"{session.name}: no report — {last}")
            return
        self.document.load(str(pdf))
        self.current = session
        self.status.setText(f"{session.name}: {self.document.pageCount()} page report "
                            "(measurements with their spread, not a diagnosis)")
        for b in (self.save_pdf, self.export_csv):
            b.setEnabled(True)

    def _save_pdf(self) -> None:
        if self.current is None:
            return
        name, _ = QFileDialog.getSaveFileName(self, "Save report", f"{self.current.stem}-report.pdf", "PDF (*.pdf)")
        if name:
            shutil.copyfile(self._tmp / f"{self.current.stem}.pdf", name)

    def _export_csv(self) -> None:
        if self.current is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export session CSV into folder")
        if not folder:
            return
        result = subprocess.run(medius_command("export", str(self.current), "--csv", folder),
                                capture_output=True, text=True)
        self.status.setText(f"CSV written to {folder}" if result.returncode == 0 else
                            f"CSV export failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")

    def shutdown(self) -> None:
        if self._job is not None:
            self._job[0].kill()
        shutil.rmtree(self._tmp, ignore_errors=True)
