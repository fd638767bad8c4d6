"""Small painted widgets of the live view."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

GMED_COLOUR = QColor(31, 119, 180)  # blue
TFL_COLOUR = QColor(255, 127, 14)  # orange
SCALE_MAX_PCT = 120.0  # bars run past 100 %MVIC: values above the reference are shown, not clipped at 100


class PercentBar(QWidget):
    """A horizontal %MVIC bar with a 100 % tick and the value written on it; grey when there is no reference."""

    def __init__(self, label: str, colour: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.colour = colour
        self.value: float | None = None
        self.target: tuple[float, float] | None = None  # biofeedback band, %MVIC
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_value(self, value: float | None) -> None:
        if value != self.value:
            self.value = value
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        label_w = 64
        bar = QRectF(label_w, 4, w - label_w - 4, h - 8)
        p.setPen(self.palette().text().color())
        p.drawText(QRectF(0, 0, label_w - 6, h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, self.label)
        p.fillRect(bar, QColor(235, 235, 235))
        if self.target is not None:
            lo, hi = self.target
            x0 = bar.left() + bar.width() * lo / SCALE_MAX_PCT
            x1 = bar.left() + bar.width() * min(hi, SCALE_MAX_PCT) / SCALE_MAX_PCT
            p.fillRect(QRectF(x0, bar.top(), x1 - x0, bar.height()), QColor(200, 230, 200))
        if self.value is not None:
            frac = max(0.0, min(self.value, SCALE_MAX_PCT)) / SCALE_MAX_PCT
            p.fillRect(QRectF(bar.left(), bar.top() + 3, bar.width() * frac, bar.height() - 6), self.colour)
        x100 = bar.left() + bar.width() * 100.0 / SCALE_MAX_PCT
        p.setPen(QPen(QColor(90, 90, 90), 1, Qt.PenStyle.DashLine))
        p.drawLine(int(x100), int(bar.top()), int(x100), int(bar.bottom()))
        p.setPen(QColor(20, 20, 20))
        f = QFont(self.font())
        f.setBold(True)
        p.setFont(f)
        text = "no MVIC yet" if self.value is None else f"{self.value:.0f} %MVIC" + ("  (above MVIC)" if self.value > 100 else "")
        p.drawText(bar.adjusted(6, 0, -4, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        p.end()
