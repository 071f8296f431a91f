// Scheduler, fleet economics (docs/fleet.md): the service-time table at start, what finished jobs
// teach the model, the offered load per node class, the autoscaling signal, the fleet metrics and
// the FleetService view.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_internal.h"

namespace turbovid::scheduler {
namespace {

// A model's default output shape with a variant's default steps (what a bare request renders).
std::optional<JobShape> DefaultShape(const ModelSpec& model, const VariantSpec& variant) {
  JobShape shape{model.id,
                 variant.name,
                 model.default_width_pixels,
                 model.default_height_pixels,
                 model.default_num_frames,
                 variant.default_steps};
  if (shape.width_pixels <= 0 && !PresetSize(model.default_resolution, model.default_aspect,
                                             &shape.width_pixels, &shape.height_pixels)
                                      .ok()) {
    return std::nullopt;
  }
  return shape;
}

// The layout a fresh worker of the class runs the variant with (a group when it needs one).
std::string DefaultLayout(const ModelSpec& model, const VariantSpec& variant,
                          const std::string& node_class) {
  return FreshLayout(PlacementRequest{model.id, &variant, 0, 0, 0}, node_class);
}

}  // namespace

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

absl::StatusOr<ServiceTimeTable> LoadServiceTimes(const SchedulerConfig& config,
                                                  const ModelCatalog& catalog) {
  const std::string& path = config.placement.service_times_file;
  if (path.empty()) return ServiceTimeTable{};
  TV_ASSIGN_OR_RETURN(ServiceTimeTable table, LoadServiceTimeTable(path));
  const std::set<std::string> classes = catalog.NodeClasses();
  auto unknown_class = [&](const std::string& where, const std::string& name) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", where, ": '", name,
        "' is not a node class of the model catalog (known: ", absl::StrJoin(classes, ", "), ")"));
  };
  for (const auto& [name, price] : table.node_classes) {
    if (classes.count(name) == 0) return unknown_class("node_classes", name);
  }
  for (const PriorEntry& e : table.priors) {
    if (classes.count(e.node_class) == 0) return unknown_class("priors.node_class", e.node_class);
    const ModelSpec* model = catalog.Find(e.model_id);
    if (model == nullptr || model->FindVariant(e.variant) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": priors: ", e.model_id, ":", e.variant,
                                                     " is not in the model catalog"));
    }
  }
  return table;
}

ServiceKey Scheduler::ServiceKeyOf(const ActiveJob& job) const {
  return ServiceKey{
      job.node_class, job.layout.empty() ? "1gpu" : job.layout,
      JobShape{job.placement.model_id, job.placement.variant->name, job.placement.width_pixels,
               job.placement.height_pixels, job.placement.num_frames, job.stored.job.num_steps()}};
}

void Scheduler::CountArrivalLocked(const ActiveJob& job) {
  const double now = UnixNow();
  const AutoscaleOptions options{config_.placement.default_slo_seconds,
                                 config_.placement.target_utilization};
  auto seconds = [&](int, int c) -> std::optional<double> {
    ServiceKey key = ServiceKeyOf(job);
    key.node_class = class_capacity_[c].probe.node_class;
    key.layout = FreshLayout(job.placement, key.node_class);
    std::optional<ServiceEstimate> e = service_model_.Estimate(key);
    if (!e.has_value()) return std::nullopt;
    return e->seconds;
  };
  double s = 0;
  const int c = RouteJob(now, PlacementJob{&job.placement, job.deadline_unix}, 0, class_capacity_,
                         seconds, options, &s);
  if (c >= 0) offered_load_[c].Add(now, s);
}

void Scheduler::RecordServiceLocked(const ActiveJob& job, double now_steady) {
  const double service = now_steady - job.assigned_steady - job.load_seconds;
  if (!(service > 0)) return;
  const std::string& model_id = job.placement.model_id;
  service_model_.RecordJob(ServiceKeyOf(job), service, job.denoise_seconds);
  metrics_->job_service.WithLabels({model_id, job.placement.variant->name, job.node_class})
      .Observe(service);
  if (job.expected_seconds > 0) {  // both with the model load, when there was one
    metrics_->service_time_ratio.WithLabels({job.node_class})
        .Observe((service + job.load_seconds) / job.expected_seconds);
  }
  metrics_->job_cost.WithLabels({model_id, job.node_class})
      .Increment(job.price_per_hour * service / 3600);
  if (std::isfinite(job.deadline_unix)) {
    metrics_->deadline_jobs
        .WithLabels({model_id, UnixNow() <= job.deadline_unix ? "met" : "missed"})
        .Increment();
  }
}

void Scheduler::HoldLocked(ActiveJob& job, const std::string& node_class, const std::string& layout,
                           double seconds) {
  if (!job.held_for.first.empty()) {
    auto it = held_seconds_.find(job.held_for);
    if (it != held_seconds_.end()) {
      it->second -= job.held_seconds;
      if (it->second <= 1e-9) held_seconds_.erase(it);
    }
  }
  job.held_for = {node_class, layout};
  job.held_seconds = node_class.empty() || !std::isfinite(seconds) ? 0 : seconds;
  if (!node_class.empty()) held_seconds_[job.held_for] += job.held_seconds;
}

Scheduler::FleetDemand Scheduler::DemandLocked(double now) const {
  std::map<std::string, int> class_index;
  for (size_t c = 0; c < class_capacity_.size(); ++c) {
    class_index[class_capacity_[c].probe.node_class] = static_cast<int>(c);
  }
  FleetDemand out;
  out.loads.resize(class_capacity_.size());
  std::vector<const ActiveJob*> queued;
  std::vector<PlacementJob> queued_jobs;
  for (const auto& [id, job] : active_) {
    if (job->stored.state == v1::JOB_STATE_QUEUED) {
      queued.push_back(job.get());
      queued_jobs.push_back(PlacementJob{&job->placement, job->deadline_unix});
      continue;
    }
    auto c = class_index.find(job->node_class);
    if (c == class_index.end() || !std::isfinite(job->expected_finish_unix)) continue;
    out.loads[c->second].running_remaining_seconds +=
        std::max(0.0, job->expected_finish_unix - now);
  }
  for (const auto& [id, worker] : workers_) {
    auto c = class_index.find(worker->info.node_class());
    if (worker->registered && !worker->tasks.empty() && c != class_index.end()) {
      ++out.loads[c->second].busy_workers;
    }
  }
  for (size_t c = 0; c < class_capacity_.size(); ++c) {
    out.loads[c].offered_load = offered_load_[c].Value(now);
  }
  auto seconds = [&](int j, int c) -> std::optional<double> {
    ServiceKey key = ServiceKeyOf(*queued[j]);
    key.node_class = class_capacity_[c].probe.node_class;
    key.layout = FreshLayout(queued[j]->placement, key.node_class);
    std::optional<ServiceEstimate> e = service_model_.Estimate(key);
    if (!e.has_value()) return std::nullopt;
    return e->seconds;
  };
  out.demand = DesiredWorkers(now, queued_jobs, class_capacity_, out.loads, seconds,
                              AutoscaleOptions{config_.placement.default_slo_seconds,
                                               config_.placement.target_utilization});
  return out;
}

void Scheduler::CollectFleetMetricsLocked() {
  const FleetDemand d = DemandLocked(UnixNow());
  for (size_t c = 0; c < class_capacity_.size(); ++c) {
    const std::string& node_class = class_capacity_[c].probe.node_class;
    metrics_->pool_desired_workers.WithLabels({node_class}).Set(d.demand[c].desired_workers);
    metrics_->pool_offered_load.WithLabels({node_class}).Set(d.loads[c].offered_load);
    metrics_->pool_queued_work.WithLabels({node_class}).Set(d.demand[c].queued_seconds);
    metrics_->node_class_price.WithLabels({node_class}).Set(class_capacity_[c].price_per_hour);
  }
  for (const ModelSpec& model : catalog_.models()) {
    for (const VariantSpec& variant : model.variants) {
      const std::optional<JobShape> shape = DefaultShape(model, variant);
      if (!shape.has_value()) continue;
      for (const auto& [node_class, bytes] : variant.memory_bytes) {
        const std::optional<ServiceEstimate> e = service_model_.Estimate(
            ServiceKey{node_class, DefaultLayout(model, variant, node_class), *shape});
        if (e.has_value()) {
          metrics_->service_time_estimate.WithLabels({model.id, variant.name, node_class})
              .Set(e->seconds);
        }
      }
    }
  }
}

absl::StatusOr<v1::GetFleetResponse> Scheduler::GetFleet() {
  std::lock_guard<std::mutex> lock(mu_);
  const double now = UnixNow();
  const FleetDemand d = DemandLocked(now);
  v1::GetFleetResponse response;
  for (size_t c = 0; c < class_capacity_.size(); ++c) {
    v1::NodeClassStatus* status = response.add_node_classes();
    const std::string& node_class = class_capacity_[c].probe.node_class;
    status->set_node_class(node_class);
    status->set_price_per_hour(class_capacity_[c].price_per_hour);
    for (const auto& [id, worker] : workers_) {
      if (!worker->registered || worker->info.node_class() != node_class) continue;
      status->set_workers(status->workers() + 1);
      if (worker->draining) {
        status->set_draining_workers(status->draining_workers() + 1);
      } else if (worker->tasks.empty()) {
        status->set_idle_workers(status->idle_workers() + 1);
      } else {
        status->set_busy_workers(status->busy_workers() + 1);
      }
    }
    status->set_desired_workers(d.demand[c].desired_workers);
    status->set_offered_load(d.loads[c].offered_load);
    status->set_queued_jobs(d.demand[c].queued_jobs);
    status->set_queued_seconds(d.demand[c].queued_seconds);
  }
  std::set<std::string> listed;
  auto add = [&](const ServiceKey& key, const ServiceEstimate& e) {
    const JobShape& s = key.shape;
    const std::string id =
        absl::StrCat(key.node_class, "/", key.layout, "/", s.model_id, ":", s.variant, "/",
                     s.width_pixels, "x", s.height_pixels, "x", s.num_frames, "/", s.num_steps);
    if (!listed.insert(id).second) return;
    v1::ServiceTimeEstimate* out = response.add_service_times();
    out->set_node_class(key.node_class);
    out->set_layout(key.layout);
    out->set_model_id(s.model_id);
    out->set_variant(s.variant);
    out->set_width_pixels(s.width_pixels);
    out->set_height_pixels(s.height_pixels);
    out->set_num_frames(s.num_frames);
    out->set_num_steps(s.num_steps);
    out->set_seconds(e.seconds);
    out->set_source(EstimateSourceName(e.source));
    out->set_samples(e.samples);
    out->set_prior_seconds(service_model_.PriorEstimate(key).value_or(0));
    out->set_cost(service_model_.PricePerHour(key.node_class) * e.seconds / 3600);
  };
  for (const ModelSpec& model : catalog_.models()) {
    for (const VariantSpec& variant : model.variants) {
      const std::optional<JobShape> shape = DefaultShape(model, variant);
      if (!shape.has_value()) continue;
      for (const auto& [node_class, bytes] : variant.memory_bytes) {
        const ServiceKey key{node_class, DefaultLayout(model, variant, node_class), *shape};
        if (std::optional<ServiceEstimate> e = service_model_.Estimate(key)) add(key, *e);
      }
    }
  }
  for (const ServiceTimeModel::Measured& m : service_model_.MeasuredEntries()) {
    if (std::optional<ServiceEstimate> e = service_model_.Estimate(m.key)) add(m.key, *e);
  }
  return response;
}

}  // namespace turbovid::scheduler
