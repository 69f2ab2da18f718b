//! A progress bar over the whole run (epoch, step, loss, images/s, ETA) on stderr. indicatif
//! hides it when stderr is not a terminal; `enabled = false` hides it always.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    images: u64,
    epochs: usize,
    steps_per_epoch: usize,
}

impl Progress {
    /// A bar over `(epochs - first_epoch) * steps_per_epoch` steps.
    pub fn new(first_epoch: usize, epochs: usize, steps_per_epoch: usize, enabled: bool) -> Progress {
        let total = (epochs.saturating_sub(first_epoch) * steps_per_epoch) as u64;
        let bar = if enabled {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {msg} eta {eta}") {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar, started: Instant::now(), images: 0, epochs, steps_per_epoch }
    }

    /// Counts one step of `images` images.
    pub fn step(&mut self, images: usize) {
        self.images += images as u64;
        self.bar.inc(1);
    }

    /// Images trained on since the start.
    pub fn images(&self) -> u64 {
        self.images
    }

    /// Images per second since the start.
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    /// Updates the message after a loss readback. `epoch` and `step` 0-based.
    pub fn report(&self, epoch: usize, step: usize, loss: f32) {
        self.bar.set_message(format!(
            "epoch {}/{} step {}/{} loss {loss:.5} {:.0} img/s",
            epoch + 1,
            self.epochs,
            step + 1,
            self.steps_per_epoch,
            self.images_per_second()
        ));
    }

    /// Runs `f` with the bar cleared (for printing lines).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
