//! Registering families from their declarations (naming scheme, bounds,
//! buckets), label guards, and families computed at scrape time.

use super::checks::histogram_shape;
use super::*;

impl Telemetry {
    /// A guard bounding one open label of a declared family: its bound is
    /// the one configured with
    /// [`with_label_bound`](TelemetryBuilder::with_label_bound), else the
    /// declaration's. Past it, values become `__other__` and count in
    /// `plimsoll_cardinality_overflow_total{metric, label}`.
    pub fn label_guard(
        &self,
        family: &FamilyDecl,
        label: &str,
    ) -> Result<LabelGuard, RegisterError> {
        let declared = family.name_for(self.inner.naming);
        // As exposed: counters end in `_total`.
        let name = match family.kind() {
            MetricKind::Counter => format!(
                "{}_total",
                crate::family::base_name(declared, MetricKind::Counter)
            ),
            _ => declared.to_string(),
        };
        let not_open = || RegisterError::NotAnOpenLabel {
            metric: name.to_string(),
            label: label.to_string(),
            open: family
                .labels()
                .iter()
                .filter(|l| matches!(l.bound(), Bound::Open(_)))
                .map(|l| l.name())
                .collect(),
        };
        let decl = family.label(label).ok_or_else(not_open)?;
        let Bound::Open(default) = decl.bound() else {
            return Err(not_open());
        };
        let limit = self
            .inner
            .label_bounds
            .get(&(family.key(), label.to_string()))
            .copied()
            .unwrap_or(default);
        self.bounded_label(&name, decl.name_for(self.inner.naming), limit)
    }

    /// A guard bounding the values of `label` of `metric` (the name as
    /// exposed, without prefix) to `limit`, for families registered by
    /// name. Prefer [`label_guard`](Telemetry::label_guard) with a
    /// declaration.
    ///
    /// One label has one bound: every guard for the same metric and label
    /// shares its values (two layers on one telemetry do not double it),
    /// and asking for it again with another limit is an error.
    pub fn bounded_label(
        &self,
        metric: &str,
        label: &str,
        limit: usize,
    ) -> Result<LabelGuard, RegisterError> {
        if limit == 0 {
            return Err(RegisterError::ZeroBound {
                metric: metric.to_string(),
                label: label.to_string(),
            });
        }
        let exposed = format!("{}{metric}", self.inner.prefix);
        let mut guards = self.inner.guards.lock().unwrap_or_else(|e| e.into_inner());
        let key = (exposed, label.to_string());
        if let Some(guard) = guards.get(&key) {
            if guard.limit() != limit {
                return Err(RegisterError::BoundConflict {
                    metric: metric.to_string(),
                    label: label.to_string(),
                    bound: guard.limit(),
                    requested: limit,
                });
            }
            return Ok(guard.clone());
        }
        let guard = LabelGuard::new(
            limit,
            self.inner.overflow.clone(),
            key.0.clone(),
            key.1.clone(),
        );
        guards.insert(key, guard.clone());
        Ok(guard)
    }

    /// Registers (or returns the already registered) family of a
    /// declaration, under this telemetry's naming scheme:
    /// `let duration: Histogram<MyLabels> = telemetry.declare(&MY_DECL)?;`.
    ///
    /// The label set's names must be the declaration's labels (catalogue
    /// names, in order); under [`Naming::OpenTelemetry`] the series carry
    /// the declared OpenTelemetry names.
    pub fn declare<T: Declared>(&self, family: &FamilyDecl) -> Result<T, RegisterError> {
        T::declare(self, family)
    }

    /// Like [`declare`](Telemetry::declare) for a histogram, with buckets
    /// chosen by the caller (a layer builder's `with_buckets`).
    pub fn declare_with_buckets<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        buckets: Vec<f64>,
    ) -> Result<Histogram<L>, RegisterError> {
        let labels = self.check_decl::<L>(family, MetricKind::Histogram)?;
        self.histogram_named(self.decl_opts(family).with_buckets(buckets), labels)
    }

    /// Checks a declaration against a label set and a type; returns the
    /// label names to write under the naming scheme.
    fn check_decl<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        kind: MetricKind,
    ) -> Result<Box<[&'static str]>, RegisterError> {
        let name = family.name_for(self.inner.naming);
        if family.kind() != kind {
            return Err(RegisterError::KindMismatch {
                metric: name.to_string(),
                declared: family.kind(),
                registered: kind,
            });
        }
        let declared: Vec<&'static str> = family.labels().iter().map(|l| l.name()).collect();
        if declared != L::NAMES {
            return Err(RegisterError::LabelMismatch {
                metric: name.to_string(),
                declared,
                label_set: L::NAMES.to_vec(),
            });
        }
        Ok(family
            .labels()
            .iter()
            .map(|l| l.name_for(self.inner.naming))
            .collect())
    }

    /// Registers the counter of a declaration whose series are those of
    /// `histogram` and whose values are their observation counts: a request
    /// counter beside a latency histogram with the same labels costs nothing
    /// more per request this way.
    pub fn declare_count_view<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        histogram: &Histogram<L>,
    ) -> Result<(), RegisterError> {
        let labels = self.check_decl::<L>(family, MetricKind::Counter)?;
        if !family.is_count_view() || labels != histogram.family.label_names {
            return Err(RegisterError::Conflict(
                family.name_for(self.inner.naming).to_string(),
            ));
        }
        self.register_count_view(family.name_for(self.inner.naming), family.help(), histogram)
    }

    /// Registers a family whose values are computed at each scrape by
    /// `collect`; see [`ScrapeWriter`](crate::ScrapeWriter). Its name is
    /// checked against every registered family, under the naming scheme.
    pub fn declare_scraped<L: LabelSet>(
        &self,
        family: &FamilyDecl,
        collect: impl Fn(&mut crate::ScrapeWriter<'_, L>) + Send + Sync + 'static,
    ) -> Result<(), RegisterError> {
        let labels = self.check_decl::<L>(family, family.kind())?;
        let opts = self.decl_opts(family);
        let exposed = family.name_for(self.inner.naming);
        let name = crate::family::base_name(exposed, family.kind()).to_string();
        self.check_names(&name, &labels)?;
        let shape = match family.kind() {
            MetricKind::Histogram => {
                histogram_shape(exposed, &labels, opts.buckets.clone().unwrap_or_default())?
            }
            _ => Shape::default(),
        };
        let scraped = Arc::new(crate::scrape::ScrapedFamily::<L> {
            meta: Meta {
                name: name.clone(),
                exposed: format!("{}{exposed}", self.inner.prefix),
                help: family.help().to_string(),
            },
            kind: family.kind(),
            label_names: labels,
            shape,
            max_series: opts.max_series.unwrap_or(self.inner.max_series),
            tenants: self.inner.tenants.clone(),
            overflow_family: self.inner.overflow.clone(),
            series_overflow: Default::default(),
            tenant_overflow: Default::default(),
            collect: Box::new(collect),
        });
        let mut families = self
            .inner
            .families
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if families.iter().any(|f| f.name == name) {
            return Err(RegisterError::Conflict(exposed.to_string()));
        }
        self.check_free(&families, &name, exposed)?;
        families.push(Registered {
            name,
            type_id: TypeId::of::<crate::scrape::ScrapedFamily<L>>(),
            any: scraped.clone(),
            encode: scraped,
        });
        Ok(())
    }
}

/// A family type that can be registered from a [`FamilyDecl`] with
/// [`Telemetry::declare`]: [`Counter`], [`Gauge`] and [`Histogram`].
pub trait Declared: Sized {
    /// Registers the family of `decl` on `telemetry`.
    fn declare(telemetry: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError>;
}

impl<L: LabelSet> Declared for Counter<L> {
    fn declare(t: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError> {
        let labels = t.check_decl::<L>(decl, MetricKind::Counter)?;
        let opts = t.decl_opts(decl);
        t.counter_named(opts, labels)
    }
}

impl<L: LabelSet> Declared for Gauge<L> {
    fn declare(t: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError> {
        let labels = t.check_decl::<L>(decl, MetricKind::Gauge)?;
        let opts = t.decl_opts(decl);
        t.gauge_named(opts, labels)
    }
}

impl<L: LabelSet> Declared for Histogram<L> {
    fn declare(t: &Telemetry, decl: &FamilyDecl) -> Result<Self, RegisterError> {
        let labels = t.check_decl::<L>(decl, MetricKind::Histogram)?;
        t.histogram_named(t.decl_opts(decl), labels)
    }
}

impl Telemetry {
    /// The options of a declared family under the naming scheme: its
    /// buckets (configured for it, else declared, else the default) and
    /// its series bound.
    fn decl_opts(&self, decl: &FamilyDecl) -> MetricOpts {
        let mut opts = MetricOpts::new(decl.name_for(self.inner.naming), decl.help());
        opts.buckets = self
            .inner
            .family_buckets
            .get(decl.key())
            .cloned()
            .or_else(|| decl.buckets().map(<[f64]>::to_vec))
            .or_else(|| Some(self.inner.buckets.clone()));
        opts.max_series = self.inner.family_max_series.get(decl.key()).copied();
        opts
    }
}
