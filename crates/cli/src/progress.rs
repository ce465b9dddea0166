//! Progress of long work: a bar on a terminal, plain lines every ten percent otherwise, always
//! on stderr.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::output::Printer;

/// Progress on a terminal (a bar), or plain lines every ten percent otherwise.
pub(crate) struct Progress {
    label: &'static str,
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
    failed: u64,
    retry_later: u64,
    next_report: u64,
    printer: Printer,
    started: Instant,
}

use mailpki_workflows::batch::Observer;
pub(crate) use mailpki_workflows::batch::Tick;

impl Progress {
    pub(crate) fn new(label: &'static str, total: u64, printer: Printer) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            label,
            bar,
            total,
            done: 0,
            failed: 0,
            retry_later: 0,
            next_report: total / 10,
            printer,
            started: Instant::now(),
        }
    }

    pub(crate) fn tick(&mut self, tick: Tick) {
        self.done += 1;
        match tick {
            Tick::Done => {}
            Tick::Failed => self.failed += 1,
            Tick::RetryLater => self.retry_later += 1,
        }
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!(
                    "{} failed, {} retry later",
                    self.failed, self.retry_later
                ));
                bar.inc(1);
            }
            None if self.done >= self.next_report && self.total >= 10 => {
                self.next_report = self.done + self.total / 10;
                // Counts stay far below 2^52: the conversion is exact.
                #[allow(clippy::cast_precision_loss)]
                let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                self.printer.info(&format!(
                    "{}: {}/{} users, {} failed, {} retry later, {rate:.1}/s",
                    self.label, self.done, self.total, self.failed, self.retry_later
                ));
            }
            None => {}
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A batch's users as they finish, and its warnings.
impl Observer for Progress {
    fn finished(&mut self, tick: Tick) {
        self.tick(tick);
    }

    fn warn(&self, message: &str) {
        self.printer.warn(message);
    }
}
