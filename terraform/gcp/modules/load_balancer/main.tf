# A global TCP proxy load balancer, one backend service per port, all on one address. TCP only:
# aTLS ends on the node, never at the balancer.

variable "name" {
  type = string
}

variable "ports" {
  type        = map(number)
  description = "Named port => port number, as the instance group names them."
}

variable "instance_groups" {
  type        = list(string)
  description = "The control planes' instance groups: the first's managed group, then the further ones'."
}

resource "google_compute_global_address" "endpoint" {
  name = "${var.name}-endpoint"
}

resource "google_compute_health_check" "port" {
  for_each            = var.ports
  name                = "${var.name}-${each.key}"
  check_interval_sec  = 5
  timeout_sec         = 5
  healthy_threshold   = 1
  unhealthy_threshold = 3
  tcp_health_check {
    port = each.value
  }
}

resource "google_compute_backend_service" "port" {
  for_each              = var.ports
  name                  = "${var.name}-${each.key}"
  protocol              = "TCP"
  load_balancing_scheme = "EXTERNAL"
  port_name             = each.key
  timeout_sec           = 240
  health_checks         = [google_compute_health_check.port[each.key].id]
  dynamic "backend" {
    for_each = var.instance_groups
    content {
      group           = backend.value
      balancing_mode  = "UTILIZATION"
      max_utilization = 0.8
    }
  }
}

resource "google_compute_target_tcp_proxy" "port" {
  for_each        = var.ports
  name            = "${var.name}-${each.key}"
  backend_service = google_compute_backend_service.port[each.key].id
}

resource "google_compute_global_forwarding_rule" "port" {
  for_each              = var.ports
  name                  = "${var.name}-${each.key}"
  ip_address            = google_compute_global_address.endpoint.address
  ip_protocol           = "TCP"
  load_balancing_scheme = "EXTERNAL"
  port_range            = tostring(each.value)
  target                = google_compute_target_tcp_proxy.port[each.key].id
  labels = {
    cloister-port = each.key
  }
}

output "address" {
  value = google_compute_global_address.endpoint.address
}

output "health_check_ids" {
  value = { for k, h in google_compute_health_check.port : k => h.id }
}
