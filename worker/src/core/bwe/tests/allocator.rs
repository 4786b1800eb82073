//! The allocator on tables of cases.

use crate::core::bwe::allocator::{Allocation, ConsumerDemand, Layer, MediaKind, allocate};

/// Simulcast ladder: spatial 0/1/2 at 150k/500k/1.5M for the base temporal layer, +1/3 per
/// temporal layer up (cumulative).
const SIMULCAST: [[u64; 3]; 3] =
    [[100_000, 130_000, 150_000], [330_000, 430_000, 500_000], [1_000_000, 1_300_000, 1_500_000]];
/// Spatial layers only (one temporal layer).
const SPATIAL_ONLY: [[u64; 3]; 3] = [[150_000, 0, 0], [500_000, 0, 0], [1_500_000, 0, 0]];
const SCREEN: [[u64; 3]; 3] = [[300_000, 0, 0], [1_200_000, 0, 0], [0, 0, 0]];

fn l(s: u8, t: u8) -> Option<Layer> {
    Some(Layer::new(s, t))
}

fn video(id: usize, priority: u8, current: Option<Layer>) -> ConsumerDemand {
    ConsumerDemand {
        id,
        kind: MediaKind::Video,
        priority,
        paused: false,
        preferred: Layer::new(2, 2),
        current,
        layer_bitrates: SIMULCAST,
    }
}

fn spatial(id: usize, current: Option<Layer>) -> ConsumerDemand {
    ConsumerDemand { layer_bitrates: SPATIAL_ONLY, preferred: Layer::new(2, 0), ..video(id, 1, current) }
}

fn audio(id: usize) -> ConsumerDemand {
    ConsumerDemand {
        id,
        kind: MediaKind::Audio,
        priority: 1,
        paused: false,
        preferred: Layer::new(0, 0),
        current: None,
        layer_bitrates: [[40_000, 0, 0], [0; 3], [0; 3]],
    }
}

fn screen(id: usize) -> ConsumerDemand {
    ConsumerDemand {
        kind: MediaKind::Screen,
        layer_bitrates: SCREEN,
        preferred: Layer::new(1, 0),
        ..video(id, 1, None)
    }
}

fn targets(allocations: &[Allocation]) -> Vec<Option<Layer>> {
    allocations.iter().map(|a| a.target).collect()
}

struct Case {
    name: &'static str,
    estimate: u64,
    consumers: Vec<ConsumerDemand>,
    expected: Vec<Option<Layer>>,
}

#[test]
fn bwe_allocator_table() {
    let cases = vec![
        Case {
            name: "the lowest layer is a floor, even when nothing fits",
            estimate: 50_000,
            consumers: vec![video(0, 1, None)],
            expected: vec![l(0, 0)],
        },
        Case { name: "lowest layer", estimate: 120_000, consumers: vec![video(0, 1, None)], expected: vec![l(0, 0)] },
        Case {
            name: "temporal up within the base spatial layer",
            estimate: 200_000,
            consumers: vec![video(0, 1, None)],
            expected: vec![l(0, 2)],
        },
        Case { name: "everything", estimate: 10_000_000, consumers: vec![video(0, 1, None)], expected: vec![l(2, 2)] },
        Case {
            name: "preference caps the layer",
            estimate: 10_000_000,
            consumers: vec![ConsumerDemand { preferred: Layer::new(1, 1), ..video(0, 1, None) }],
            expected: vec![l(1, 1)],
        },
        Case {
            name: "paused gets nothing",
            estimate: 10_000_000,
            consumers: vec![ConsumerDemand { paused: true, ..video(0, 1, l(2, 2)) }],
            expected: vec![None],
        },
        Case {
            name: "fairness: both get their lowest before either goes higher",
            estimate: 240_000,
            consumers: vec![video(0, 9, None), video(1, 1, None)],
            expected: vec![l(0, 0), l(0, 0)],
        },
        Case {
            name: "priority order in the upgrade rounds",
            estimate: 250_000,
            consumers: vec![video(0, 1, None), video(1, 9, None)],
            expected: vec![l(0, 0), l(0, 1)],
        },
        Case {
            name: "rounds alternate: the high priority does not take it all",
            estimate: 1_050_000,
            consumers: vec![video(0, 9, None), video(1, 1, None)],
            expected: vec![l(1, 2), l(1, 1)],
        },
        Case {
            name: "floors for both, whatever they cost",
            estimate: 130_000,
            consumers: vec![
                ConsumerDemand { layer_bitrates: [[500_000, 0, 0], [0; 3], [0; 3]], ..video(0, 9, None) },
                video(1, 1, None),
            ],
            expected: vec![l(0, 0), l(0, 0)],
        },
        Case {
            name: "audio first, and video's floor, even when neither fits",
            estimate: 20_000,
            consumers: vec![video(0, 200, None), audio(1)],
            expected: vec![l(0, 0), l(0, 0)],
        },
        Case {
            name: "audio is reserved before video",
            estimate: 160_000,
            consumers: vec![audio(0), video(1, 1, None)],
            expected: vec![l(0, 0), l(0, 0)],
        },
        Case {
            name: "screen share before video, up to its preference",
            estimate: 1_500_000,
            consumers: vec![video(0, 255, None), screen(1), audio(2)],
            expected: vec![l(0, 2), l(1, 0), l(0, 0)],
        },
        Case {
            name: "screen share takes what fits, video gets the rest",
            estimate: 700_000,
            consumers: vec![screen(0), video(1, 1, None)],
            expected: vec![l(0, 0), l(1, 0)],
        },
        Case {
            name: "keeping the current layer needs no margin",
            estimate: 500_000,
            consumers: vec![spatial(0, l(1, 0))],
            expected: vec![l(1, 0)],
        },
        Case {
            name: "reaching the same layer from below needs the margin",
            estimate: 500_000,
            consumers: vec![spatial(0, l(0, 0))],
            expected: vec![l(0, 0)],
        },
        Case {
            name: "an upgrade with the margin covered",
            estimate: 575_000,
            consumers: vec![spatial(0, l(0, 0))],
            expected: vec![l(1, 0)],
        },
        Case {
            name: "below the current layer's bitrate: down",
            estimate: 499_999,
            consumers: vec![spatial(0, l(1, 0))],
            expected: vec![l(0, 0)],
        },
        Case {
            name: "current layer above the new preference: capped, no margin for lower layers",
            estimate: 500_000,
            consumers: vec![ConsumerDemand { preferred: Layer::new(1, 0), ..spatial(0, l(2, 0)) }],
            expected: vec![l(1, 0)],
        },
    ];
    for case in cases {
        let got = targets(&allocate(case.estimate, &case.consumers));
        assert_eq!(got, case.expected, "case: {}", case.name);
    }
}

#[test]
fn bwe_allocator_reports_bitrates_and_stays_within_the_estimate() {
    let consumers = vec![video(0, 5, None), video(1, 3, None), video(2, 1, None), audio(3)];
    for estimate in (0..40).map(|i| i * 100_000) {
        let allocations = allocate(estimate, &consumers);
        let total: u64 = allocations.iter().map(|a| a.bitrate_bps).sum();
        let audio = allocations[3].bitrate_bps;
        // Over the estimate only by the floors: audio, and every video's lowest layer.
        let floors: u64 = audio + consumers.iter().take(3).map(|c| c.layer_bitrates[0][0]).sum::<u64>();
        assert!(total <= estimate.max(floors), "{estimate}: {allocations:?}");
        for (a, c) in allocations.iter().zip(&consumers) {
            assert_eq!(a.id, c.id);
            let expected = a.target.map_or(0, |t| c.layer_bitrates[usize::from(t.spatial)][usize::from(t.temporal)]);
            assert_eq!(a.bitrate_bps, expected);
        }
    }
}

/// An estimate oscillating ±5 % around a layer boundary, fed back as the current layer each call,
/// must not flip the layer on every call.
#[test]
fn bwe_allocator_hysteresis_at_a_boundary() {
    // Each case: (consumer, the boundary the estimate hovers around).
    let cases = [(spatial(0, None), 500_000u64), (spatial(0, None), 1_500_000), (video(0, 1, None), 1_000_000)];
    for (consumer, boundary) in cases {
        let mut current = None;
        let mut flips = 0;
        for call in 0..100 {
            let estimate = if call % 2 == 0 { boundary * 105 / 100 } else { boundary * 95 / 100 };
            let target = allocate(estimate, &[ConsumerDemand { current, ..consumer }])[0].target;
            if call > 0 && target != current {
                flips += 1;
            }
            current = target;
        }
        assert!(flips <= 1, "boundary {boundary}: {flips} flips");
    }
    // Without the current layer known, the same oscillation does flip: the margin is what holds it.
    let over = allocate(1_050_000 * 115 / 100, &[spatial(0, None)])[0].target;
    let under = allocate(950_000, &[spatial(0, l(1, 0))])[0].target;
    assert_eq!((over, under), (l(1, 0), l(1, 0)));
}
