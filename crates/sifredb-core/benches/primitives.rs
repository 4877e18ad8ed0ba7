//! Hot-path costs: per-value encryption and decryption at typical column sizes, blind-index terms,
//! and the cold path of deriving a per-context cipher. Short measurement windows keep the whole run
//! under ~60 s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sifredb_core::format::Algorithm;
use sifredb_core::{blind_index_message, encode_context, random, Cipher, RootKey};

const SIZES: [usize; 4] = [32, 256, 4096, 65536];

fn setup() -> (RootKey, Vec<u8>) {
    // As in the Node.js binding, which reports forks through `pthread_atfork`: no `getpid()` per
    // nonce. Nothing here forks.
    random::use_fork_hook();
    let root = RootKey::new(1, &[0x42; 32]).unwrap();
    let ctx = encode_context(Some("acme"), "users", "email", 1).unwrap();
    (root, ctx)
}

fn encrypt_group(c: &mut Criterion, name: &str, cipher: &dyn Cipher) {
    let mut group = c.benchmark_group(name);
    for size in SIZES {
        let value = vec![0x5a; size];
        let mut out = vec![0u8; cipher.sealed_len(size).unwrap()];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &value, |b, value| {
            b.iter(|| {
                cipher
                    .encrypt_into(black_box(&mut out), 0x00, black_box(value))
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn decrypt_group(c: &mut Criterion, name: &str, cipher: &dyn Cipher) {
    let mut group = c.benchmark_group(name);
    for size in SIZES {
        let envelope = cipher.encrypt(0x00, &vec![0x5a; size]).unwrap();
        let mut out = vec![0u8; size + 1];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(size),
            &envelope,
            |b, envelope| {
                b.iter(|| {
                    cipher
                        .decrypt_into(black_box(envelope), black_box(&mut out))
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

fn ciphers(c: &mut Criterion) {
    let (root, ctx) = setup();
    let chacha = root
        .randomized_cipher(Algorithm::ChaCha20Poly1305, &ctx)
        .unwrap();
    let siv = root.deterministic_cipher(&ctx).unwrap();
    encrypt_group(c, "randomized_encrypt", &chacha);
    decrypt_group(c, "randomized_decrypt", &chacha);
    encrypt_group(c, "deterministic_encrypt", &siv);
    decrypt_group(c, "deterministic_decrypt", &siv);
}

/// Batches as `benchmark/run.js` runs them through N-API: 1,000 values of 32 B laid out in one
/// buffer and sealed (or opened) in place with one call.
fn batches(c: &mut Criterion) {
    const COUNT: usize = 1000;
    const SIZE: usize = 32;
    let (root, ctx) = setup();
    let chacha = root
        .randomized_cipher(Algorithm::ChaCha20Poly1305, &ctx)
        .unwrap();
    let lens = vec![(SIZE + 1) as u32; COUNT];
    let record = chacha.sealed_len(SIZE).unwrap();
    let mut buf = vec![0x5a; record * COUNT];
    let mut group = c.benchmark_group("randomized_seal_records");
    group.throughput(Throughput::Elements(COUNT as u64));
    group.bench_function(BenchmarkId::from_parameter(SIZE), |b| {
        b.iter(|| sifredb_core::batch::seal_records(&chacha, black_box(&mut buf), &lens).unwrap())
    });
    group.finish();

    sifredb_core::batch::seal_records(&chacha, &mut buf, &lens).unwrap();
    let sealed = buf.clone();
    let envelope_lens = vec![record as u32; COUNT];
    let mut group = c.benchmark_group("randomized_open_records");
    group.throughput(Throughput::Elements(COUNT as u64));
    group.bench_function(BenchmarkId::from_parameter(SIZE), |b| {
        b.iter(|| {
            buf.copy_from_slice(&sealed);
            sifredb_core::batch::open_records(&chacha, black_box(&mut buf), &envelope_lens).unwrap()
        })
    });
    group.finish();
}

fn small_ops(c: &mut Criterion) {
    let (root, ctx) = setup();
    let key = root.blind_index(&ctx, b"email_bidx").unwrap();
    let mut group = c.benchmark_group("blind_index");
    for size in SIZES {
        // The message of a one-field index: u32be length ‖ value.
        let message = blind_index_message(&[&vec![0x61; size]]).unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &message, |b, message| {
            b.iter(|| key.compute(black_box(message), 16).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("derive_cipher");
    group.bench_function("chacha20poly1305", |b| {
        b.iter(|| {
            root.randomized_cipher(Algorithm::ChaCha20Poly1305, black_box(&ctx))
                .unwrap()
        })
    });
    group.bench_function("aes-256-siv", |b| {
        b.iter(|| root.deterministic_cipher(black_box(&ctx)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("nonce");
    let mut nonce = [0u8; 12];
    group.bench_function("pooled", |b| {
        b.iter(|| random::fill_nonce(black_box(&mut nonce)).unwrap())
    });
    group.bench_function("getrandom", |b| {
        b.iter(|| random::fill_os(black_box(&mut nonce)).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_millis(1000))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20);
    targets = ciphers, batches, small_ops
}
criterion_main!(benches);
