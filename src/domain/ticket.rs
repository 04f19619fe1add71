//! Tickets: their states, numbers and business days.
//!
//! The numbering and business-day rules here ([`sequence_number`],
//! [`format_number`], [`business_day`]) are the reference model: production
//! numbers tickets inside the `issue` Lua script, where the day's counter is
//! incremented atomically with the ticket (so two nodes cannot disagree about
//! the day or hand out one number twice). The differential property tests
//! (`tests/integration/rules.rs`) run that script on a real Redis against
//! these functions. [`utc_offset_s`] is production code: the node computes
//! the branch's offset and passes it to the script.

use chrono::{DateTime, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Waiting,
    Called,
    Served,
    NoShow,
    /// Still open when the branch's business day was closed.
    Closed,
}

/// A ticket as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ticket {
    pub id: String,
    pub branch: String,
    pub service: String,
    #[schema(example = "A007")]
    pub number: String,
    pub status: TicketStatus,
    pub issued_at: DateTime<Utc>,
    pub called_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counter: Option<String>,
    /// 1 = next; present while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// Present while waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_wait_s: Option<u64>,
}

/// One service's queue as boards show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueStatus {
    pub service: String,
    pub waiting: u64,
    /// How long the oldest waiting ticket has waited; 0 when none waits.
    pub longest_wait_s: u64,
    /// What a ticket issued now would wait.
    pub estimated_wait_s: u64,
}

/// One line of a display board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CalledEntry {
    /// The ticket's id (an addition to API.md: a counter page finds its
    /// current ticket from it).
    pub id: String,
    pub number: String,
    pub counter: String,
    /// When it was last announced (called or recalled).
    pub called_at: DateTime<Utc>,
}

/// How many of the latest calls a display board shows.
pub const DISPLAY_LENGTH: usize = 10;

/// `GET /display`: the latest calls, newest first, at most
/// [`DISPLAY_LENGTH`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DisplayBoard {
    pub called: Vec<CalledEntry>,
}

/// What an event says happened: the SSE event name and the outbox `type`.
/// The Lua scripts write the same names; every event they emit is parsed
/// into this enum, so a name the enum does not know fails loudly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    TicketIssued,
    TicketCalled,
    TicketRecalled,
    TicketServed,
    TicketNoShow,
    TicketTransferred,
    /// Still open when the business day was closed.
    TicketClosed,
    /// Not a change: a ticket as read (`GET …/tickets/{id}`).
    #[serde(rename = "ticket")]
    TicketRead,
    /// The branch's configuration changed (live displays only; not in the
    /// outbox).
    ConfigChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::TicketIssued,
        EventKind::TicketCalled,
        EventKind::TicketRecalled,
        EventKind::TicketServed,
        EventKind::TicketNoShow,
        EventKind::TicketTransferred,
        EventKind::TicketClosed,
        EventKind::TicketRead,
        EventKind::ConfigChanged,
    ];

    /// The wire name, as in API.md.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TicketIssued => "ticket-issued",
            EventKind::TicketCalled => "ticket-called",
            EventKind::TicketRecalled => "ticket-recalled",
            EventKind::TicketServed => "ticket-served",
            EventKind::TicketNoShow => "ticket-no-show",
            EventKind::TicketTransferred => "ticket-transferred",
            EventKind::TicketClosed => "ticket-closed",
            EventKind::TicketRead => "ticket",
            EventKind::ConfigChanged => "config-changed",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ticket event exactly as the Lua scripts write it to the outbox stream
/// and publish it: the ticket's state after the change, in milliseconds since
/// the epoch by the Redis clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub id: String,
    pub service: String,
    pub number: String,
    pub status: TicketStatus,
    pub issued_ms: i64,
    #[serde(default)]
    pub called_ms: Option<i64>,
    #[serde(default)]
    pub finished_ms: Option<i64>,
    #[serde(default)]
    pub counter: Option<String>,
    /// For `ticket-transferred`: the service it left.
    #[serde(default)]
    pub from_service: Option<String>,
    /// For `ticket-transferred`: the counter it left and when that counter
    /// had called it (the transaction the transfer ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_counter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_called_ms: Option<i64>,
    /// For `ticket-called`: this is the ticket's first call (not a call
    /// after a transfer). Statistics count the wait only then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_call: bool,
    /// For `ticket-called`: when the counter became free before this call
    /// (`domain::counter_idle`); absent when nothing is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter_free_ms: Option<i64>,
    /// For `ticket-called`: since when a ticket of the counter's services
    /// has waited without a break, just before the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since_ms: Option<i64>,
    /// When the event happened.
    pub ts_ms: i64,
}

impl TicketEvent {
    /// The API view of the ticket this event carries.
    pub fn ticket(&self, branch: &str) -> Ticket {
        Ticket {
            id: self.id.clone(),
            branch: branch.to_owned(),
            service: self.service.clone(),
            number: self.number.clone(),
            status: self.status,
            issued_at: from_ms(self.issued_ms),
            called_at: self.called_ms.map(from_ms),
            finished_at: self.finished_ms.map(from_ms),
            counter: self.counter.clone(),
            position: None,
            estimated_wait_s: None,
        }
    }
}

/// Milliseconds since the epoch as a UTC time; out-of-range values clamp to
/// the epoch rather than panic.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The `nth` (1-based) ticket of a day gets this sequence number: the range
/// starts at `first` and wraps after `last`.
pub fn sequence_number(first: u32, last: u32, nth: u64) -> u32 {
    let span = u64::from(last - first) + 1;
    let offset = (nth.max(1) - 1) % span;
    // offset < span <= u32::MAX + 1, and first + offset <= last.
    first + offset as u32
}

/// The printed number: the prefix and the sequence zero-padded to the width
/// of `last` (A001 … A999).
pub fn format_number(prefix: &str, sequence: u32, last: u32) -> String {
    let width = last.to_string().len();
    format!("{prefix}{sequence:0width$}")
}

/// Whether `number` has the shape [`format_number`] gives: a prefix of one
/// or two capital letters and 1 to 10 digits. Checked before a counter asks
/// for a ticket by number, so a typo is a clear 400, not a search.
pub fn is_ticket_number(number: &str) -> bool {
    let letters = number.bytes().take_while(u8::is_ascii_uppercase).count();
    let digits = &number.as_bytes()[letters..];
    (1..=2).contains(&letters)
        && (1..=10).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
}

/// The business day of an instant: days since 1970-01-01 in local time,
/// given the zone's UTC offset at that instant.
pub fn business_day(epoch_s: i64, utc_offset_s: i32) -> i64 {
    (epoch_s + i64::from(utc_offset_s)).div_euclid(86_400)
}

/// The zone's UTC offset at an instant, in seconds east of UTC.
pub fn utc_offset_s(tz: Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
}

/// The calendar date of a business day number.
pub fn day_date(day: i64) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(
        i32::try_from(day + 719_163).unwrap_or(719_163), // 719163 = days from 0001-01-01 to 1970-01-01
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn event_kind_names_are_the_wire_names() {
        for kind in EventKind::ALL {
            let json = serde_json::to_string(&kind).expect("serializes");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(
                serde_json::from_str::<EventKind>(&json).expect("parses"),
                kind
            );
        }
    }

    #[test]
    fn ticket_numbers_have_the_printed_shape() {
        for ok in ["A042", "AB1", "Z0000000001", "A999"] {
            assert!(is_ticket_number(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "042",
            "a042",
            "ABC1",
            "A04 2",
            "A-1",
            "A00000000001",
            "Á1",
        ] {
            assert!(!is_ticket_number(bad), "{bad}");
        }
    }

    #[test]
    fn formatted_numbers_are_ticket_numbers() {
        assert!(is_ticket_number(&format_number("A", 7, 999)));
        assert!(is_ticket_number(&format_number("BC", 1, 9)));
    }

    #[test]
    fn numbers_are_padded_to_the_width_of_last() {
        assert_eq!(format_number("A", 7, 999), "A007");
        assert_eq!(format_number("AB", 42, 9999), "AB0042");
        assert_eq!(format_number("C", 5, 9), "C5");
        assert_eq!(format_number("C", 100, 100), "C100");
    }

    #[test]
    fn sequence_wraps_within_the_range() {
        let seq: Vec<u32> = (1..=7).map(|n| sequence_number(5, 7, n)).collect();
        assert_eq!(seq, [5, 6, 7, 5, 6, 7, 5]);
        assert_eq!(sequence_number(1, 999, 1000), 1);
        assert_eq!(sequence_number(0, 0, 12), 0);
    }

    #[test]
    fn business_day_follows_local_midnight_in_a_non_utc_zone() {
        let tz: Tz = "America/Sao_Paulo".parse().expect("zone"); // UTC-3
                                                                 // 2026-03-10 02:30 UTC is still 2026-03-09 in São Paulo.
        let before = Utc.with_ymd_and_hms(2026, 3, 10, 2, 30, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 10, 3, 0, 1).unwrap();
        let day_before = business_day(before.timestamp(), utc_offset_s(tz, before));
        let day_after = business_day(after.timestamp(), utc_offset_s(tz, after));
        assert_eq!(day_date(day_before).to_string(), "2026-03-09");
        assert_eq!(day_date(day_after).to_string(), "2026-03-10");

        let tokyo: Tz = "Asia/Tokyo".parse().expect("zone"); // UTC+9
        let evening_utc = Utc.with_ymd_and_hms(2026, 3, 9, 15, 0, 0).unwrap();
        let day = business_day(evening_utc.timestamp(), utc_offset_s(tokyo, evening_utc));
        assert_eq!(day_date(day).to_string(), "2026-03-10");
    }

    #[test]
    fn business_day_across_a_daylight_saving_change() {
        let tz: Tz = "Europe/Lisbon".parse().expect("zone");
        // Summer time: 23:30 UTC on 2026-07-01 is 00:30 local on 2026-07-02.
        let at = Utc.with_ymd_and_hms(2026, 7, 1, 23, 30, 0).unwrap();
        assert_eq!(utc_offset_s(tz, at), 3600);
        assert_eq!(
            day_date(business_day(at.timestamp(), 3600)).to_string(),
            "2026-07-02"
        );
        // Winter time: the same UTC time is still the same local day.
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 23, 30, 0).unwrap();
        assert_eq!(utc_offset_s(tz, at), 0);
        assert_eq!(
            day_date(business_day(at.timestamp(), 0)).to_string(),
            "2026-12-01"
        );
    }

    proptest! {
        /// Within one day and until the range wraps, numbers are unique and increasing.
        #[test]
        fn numbers_unique_and_increasing_until_wrap(first in 0u32..500, span in 1u32..500) {
            let last = first + span - 1;
            let numbers: Vec<String> = (1..=u64::from(span))
                .map(|n| format_number("A", sequence_number(first, last, n), last))
                .collect();
            let mut sorted = numbers.clone();
            sorted.sort();
            sorted.dedup();
            prop_assert_eq!(&sorted, &numbers, "sorted, unique and all the same width");
            prop_assert_eq!(sequence_number(first, last, u64::from(span) + 1), first);
        }

        #[test]
        fn sequence_always_in_range(first in 0u32..1000, span in 1u32..1000, n in 1u64..1_000_000) {
            let last = first + span - 1;
            let s = sequence_number(first, last, n);
            prop_assert!(s >= first && s <= last);
        }

        #[test]
        fn business_day_is_monotonic(a in 0i64..4_000_000_000, d in 0i64..200_000, off in -50_400i32..50_400) {
            prop_assert!(business_day(a, off) <= business_day(a + d, off));
        }
    }
}
