"""Suite-wide settings: Qt runs offscreen (no display on CI or on the developers' machines)."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
