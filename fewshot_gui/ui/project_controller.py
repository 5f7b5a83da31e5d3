"""Projects in the app: open, save, recent files, the unsaved marker, autosave and the quit prompt.

Never lose work: a few seconds after a change (at most once per :data:`AUTOSAVE_MS`) the project
is written atomically to ``NAME.fewshot.autosave`` beside it, or, for an untitled session, to
``untitled.fewshot.autosave`` in the user data folder. A save or a deliberate discard removes it;
after a crash the next start (or opening that project) offers it back. Unsaved changes are marked
in the title (Qt's ``[*]``) and quitting with them asks Save / Discard / Cancel.

Every way a project is opened (menu, recent list, command line, autosave) goes through
:meth:`ProjectController.open`, which turns any damaged file into one plain message. No torch and
no workers here: the composition root resets the labeling and shows cached predictions on
``aboutToLoad`` / ``loaded``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox
from shiboken6 import isValid

from fewshot_gui.core.errors import FewShotError
from fewshot_gui.data.project import SUFFIX, Project, load_project, save_project
from fewshot_gui.ui.main_window import MainWindow
from fewshot_gui.ui.settings import AppSettings
from fewshot_gui.ui.state import LabelState

AUTOSAVE_SUFFIX = ".autosave"
AUTOSAVE_MS = 3000
"""An autosave follows a change by this long (changes in between are saved together)."""
UNTITLED_AUTOSAVE = f"untitled{SUFFIX}{AUTOSAVE_SUFFIX}"


def autosave_of(project_path: str) -> Path:
    """Where the autosave of ``project_path`` lives (beside it)."""
    return Path(project_path + AUTOSAVE_SUFFIX)


def read_project(path: str) -> Project:
    """:func:`load_project` that raises only :class:`FewShotError` with a plain reason, whatever
    the file holds (random bytes, another encoding, deep nesting, wrong types)."""
    try:
        return load_project(path)
    except FewShotError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise FewShotError(
            f"{path} is not a readable project file ({type(error).__name__})"
        ) from None


class ProjectController(QObject):
    """The open project: its path, whether it has unsaved changes, its autosave."""

    aboutToLoad = Signal()  # the labeling of the previous project must stop
    loaded = Signal()  # state and settings hold the new project
    error = Signal(str)
    dirtyChanged = Signal(bool)

    def __init__(
        self,
        window: MainWindow,
        state: LabelState,
        settings: AppSettings,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.window, self.state, self.settings = window, state, settings
        self.path: str | None = None
        self._settings_dirty = False
        self._loading = False
        self._autosave_error = ""
        self._autosaved: Path | None = None  # what this session wrote (removed on a clean end)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setSingleShot(True)
        self.autosave_timer.setInterval(AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        w = window
        w.undo_stack.cleanChanged.connect(lambda _clean: self._changed())
        w.undo_stack.indexChanged.connect(lambda _i: self._schedule())
        w.controls.settingsChanged.connect(self._settings_changed)
        w.viewChanged.connect(self._settings_changed)
        w.open_action.triggered.connect(self.ask_open)
        w.save_action.triggered.connect(self.save)
        w.save_as_action.triggered.connect(self.ask_save_as)
        w.demo_action.triggered.connect(self.open_demo)
        w.recent_menu.aboutToShow.connect(self._fill_recent)
        self._update_title()

    # ------------------------------------------------------------------ state
    def _alive(self) -> bool:
        """False once the window is being destroyed (its undo stack still reports then)."""
        return isValid(self.window) and isValid(self.window.undo_stack)

    @property
    def dirty(self) -> bool:
        """Whether the window holds changes that are not in the project file."""
        if not self._alive():
            return False
        return self._settings_dirty or not self.window.undo_stack.isClean()

    def settings_for_save(self) -> dict:
        return {**self.window.controls.settings(), **self.window.view_settings()}

    def to_project(self) -> Project:
        return self.state.to_project(self.settings_for_save())

    def _settings_changed(self) -> None:
        if not self._loading and not self._settings_dirty:
            self._settings_dirty = True
            self._changed()
        self._schedule()

    def _changed(self) -> None:
        if not self._alive():
            return
        self._update_title()
        self.dirtyChanged.emit(self.dirty)

    def _mark_clean(self) -> None:
        self.window.undo_stack.setClean()
        self._settings_dirty = False
        self._changed()

    def _mark_dirty(self) -> None:
        self._settings_dirty = True
        self._changed()

    def _update_title(self) -> None:
        name = os.path.basename(self.path) if self.path else "untitled"
        self.window.setWindowTitle(f"{name}[*] — fewshot-gui")
        self.window.setWindowModified(self.dirty)

    # ------------------------------------------------------------------ autosave
    def autosave_path(self) -> Path:
        if self.path:
            return autosave_of(self.path)
        return self.settings.data_dir() / UNTITLED_AUTOSAVE

    def _schedule(self) -> None:
        if not self._loading and self._alive() and not self.autosave_timer.isActive():
            self.autosave_timer.start()

    def autosave(self) -> bool:
        """Write the autosave now if there is anything to lose; True when written."""
        self.autosave_timer.stop()
        if not self.dirty or (not self.path and not self.state.classes):
            return False
        target = self.autosave_path()
        try:
            save_project(self.to_project(), target)
        except OSError as error:
            text = f"could not autosave to {target}: {error.strerror or error}"
            if text != self._autosave_error:  # once per cause, not every few seconds
                self._autosave_error = text
                self.error.emit(text)
            return False
        self._autosave_error = ""
        self._autosaved = target
        return True

    def remove_autosave(self, path: Path | None = None) -> None:
        """Remove ``path`` (default: the autosave this session wrote, if any)."""
        self.autosave_timer.stop()
        target = path or self._autosaved
        if target is not None:
            target.unlink(missing_ok=True)
        if target == self._autosaved:
            self._autosaved = None

    def pending_autosave(self) -> tuple[Path, str | None] | None:
        """The newest autosave left by a session that did not end cleanly: (file, its project or
        None for the untitled session)."""
        found: list[tuple[float, Path, str | None]] = []
        untitled = self.settings.data_dir() / UNTITLED_AUTOSAVE
        if untitled.is_file():
            found.append((untitled.stat().st_mtime, untitled, None))
        for project in self.settings.recent_projects():
            saved = autosave_of(project)
            if saved.is_file() and saved.stat().st_mtime >= os.stat(project).st_mtime:
                found.append((saved.stat().st_mtime, saved, project))
        if not found:
            return None
        _, saved, project = max(found, key=lambda f: f[0])
        return saved, project

    def offer_restore(self) -> bool:
        """At start: offer the autosave of a session that ended without saving (kill, crash,
        power cut). Declining removes it. Returns True when one was restored."""
        pending = self.pending_autosave()
        if pending is None:
            return False
        saved, project = pending
        if not self.ask_restore(saved, project):
            saved.unlink(missing_ok=True)
            return False
        return self.open(project, autosave=saved) if project else self.open_autosave(saved)

    def open_autosave(self, saved: Path) -> bool:
        """Restore the untitled session from ``saved`` (it stays untitled and unsaved)."""
        if not self._load(str(saved), None):
            return False
        self._mark_dirty()
        self._status_restored(saved)
        return True

    def _status_restored(self, saved: Path) -> None:
        when = time.strftime("%H:%M", time.localtime(saved.stat().st_mtime))
        self.window.status.setText(f"Restored the unsaved changes of {when}. Save to keep them.")

    # ------------------------------------------------------------------ dialogs (tests replace)
    def ask_restore(self, saved: Path, project: str | None) -> bool:
        what = os.path.basename(project) if project else "an untitled session"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(saved.stat().st_mtime))
        answer = QMessageBox.question(
            self.window,
            "Restore unsaved changes?",
            f"fewshot-gui ended without saving {what}. Changes were autosaved at {when}.\n\n"
            "Restore them? (No discards the autosave.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_unsaved(self) -> str:
        """ "save", "discard" or "cancel"."""
        name = os.path.basename(self.path) if self.path else "this untitled project"
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Unsaved changes",
            f"Save the changes to {name} before closing?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            self.window,
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {
            QMessageBox.StandardButton.Save: "save",
            QMessageBox.StandardButton.Discard: "discard",
        }.get(QMessageBox.StandardButton(answer), "cancel")

    def confirm_close(self) -> bool:
        """Before the window closes: ask about unsaved changes. False keeps the window open."""
        if self.dirty:
            choice = self.ask_unsaved()
            if choice == "cancel" or (choice == "save" and not self.save()):
                return False
        self.remove_autosave()
        return True

    # ------------------------------------------------------------------ open / save
    def open(self, path: str, autosave: Path | None = None) -> bool:
        """Open a project (``autosave``: restore that file's content into it). Any failure is
        one plain message; the project that was open stays."""
        saved = autosave
        if saved is None:
            candidate = autosave_of(os.path.abspath(path))
            if (
                os.path.isfile(path)
                and candidate.is_file()
                and candidate.stat().st_mtime >= os.stat(path).st_mtime
            ):
                saved = candidate if self.ask_restore(candidate, path) else None
                if saved is None:
                    candidate.unlink(missing_ok=True)
        if saved is not None:
            try:
                read_project(path)  # the project itself must be readable too
            except FewShotError as error:
                self.error.emit(str(error))
                return False
        if not self._load(str(saved or path), os.path.abspath(path)):
            return False
        self.settings.add_recent(self.path or path)
        if saved is not None:
            self._mark_dirty()
            self._status_restored(saved)
        else:
            self.window.status.setText(f"Opened {path}.")
        return True

    def _load(self, source: str, project_path: str | None) -> bool:
        try:
            project = read_project(source)
        except FewShotError as error:
            self.error.emit(str(error))
            return False
        self._loading = True
        try:
            self.aboutToLoad.emit()
            self.window.undo_stack.clear()
            self.window.messages.hide()  # notices about the previous project are stale
            self.state.load(project)
            self.window.controls.apply_settings(project.settings)
            self.window.apply_view_settings(project.settings)
            self.path = project_path
        finally:
            self._loading = False
        self._mark_clean()
        self.loaded.emit()
        return True

    def save(self) -> bool:
        if not self.path:
            return self.ask_save_as()
        return self.save_as(self.path)

    def save_as(self, path: str) -> bool:
        if not path.endswith(SUFFIX):
            path += SUFFIX
        try:
            save_project(self.to_project(), path)
        except (OSError, FewShotError) as error:
            reason = error.strerror if isinstance(error, OSError) else None
            self.error.emit(f"could not save {path}: {reason or error}")
            return False
        self.path = os.path.abspath(path)
        self.remove_autosave()
        autosave_of(self.path).unlink(missing_ok=True)  # older than what was just saved
        self.settings.add_recent(self.path)
        self._mark_clean()
        self.window.status.setText(f"Saved {path}")
        return True

    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Open project", "", f"fewshot projects (*{SUFFIX})"
        )
        if path and self._may_replace():
            self.open(path)

    def ask_save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Save project", "", f"fewshot projects (*{SUFFIX})"
        )
        return self.save_as(path) if path else False

    def _may_replace(self) -> bool:
        """Before another project replaces this one: ask about unsaved changes."""
        return self.confirm_close()

    def open_demo(self) -> bool:
        from fewshot_gui.data.demo import ensure_demo

        if not self._may_replace():
            return False
        try:
            demo = ensure_demo()
        except OSError as error:
            self.error.emit(f"could not create the demo images: {error.strerror or error}")
            return False
        return self.open(str(demo.project))

    def _fill_recent(self) -> None:
        menu = self.window.recent_menu
        menu.clear()
        recent = self.settings.recent_projects()
        for path in recent:
            menu.addAction(path, lambda p=path: self._may_replace() and self.open(p))
        if not recent:
            menu.addAction("(none yet)").setEnabled(False)
