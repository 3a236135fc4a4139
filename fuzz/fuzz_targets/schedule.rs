#![no_main]
//! Schedules: cron expressions, `rate(...)`/`at(...)` forms and zones;
//! a parsed schedule's next fire times move forward.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (expr, zone) = text.split_once('\n').unwrap_or((text, "UTC"));
    let Ok(s) = rota_scheduler::schedule::Schedule::parse_in(expr, zone) else { return };
    let start = chrono::DateTime::from_timestamp(1_781_604_000, 0).expect("instant");
    let mut at = start;
    for _ in 0..4 {
        match s.next_fire(at) {
            Some(next) => {
                assert!(next > at, "{expr:?} in {zone}: {next} is not after {at}");
                at = next;
            }
            None => break,
        }
    }
});
