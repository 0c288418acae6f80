# The further control planes (after the first, which 'cloister apply' initialises): one
# confidential VM each, made from the control-plane instance template, under the name the owner's
# authorization names. A managed instance group names its instances itself, so these are
# individual instances: create chooses their names in advance and gives each its own
# cloister-control-plane-authorization in its metadata. An unmanaged instance group puts them
# behind the load balancer with the first control plane.

variable "nodes" {
  type        = map(string)
  description = "Node name => the owner's control-plane authorization for that name."
}

variable "group_name" {
  type = string
}

variable "zone" {
  type = string
}

variable "template" {
  type        = string
  description = "The control-plane instance template (confidential VM, vTPM, state disk)."
}

variable "named_ports" {
  type = map(number)
}

variable "metadata" {
  type        = map(string)
  description = "The cloister-* keys lib/metadata reads, but the authorization."
}

resource "google_compute_instance_from_template" "node" {
  for_each                 = var.nodes
  name                     = each.key
  zone                     = var.zone
  source_instance_template = var.template
  # Replaces the template's metadata as a whole: everything the node reads is here.
  metadata = merge(var.metadata, {
    cloister-control-plane-authorization = each.value
    block-project-ssh-keys               = "TRUE"
  })
  # A new template (a new image, say) never replaces a running control plane: a replacement
  # has a new state disk, which the join service that admitted this one refuses under its name.
  # (The managed groups recreate a node under its name with its stateful disk: their update
  # policy rolls a new template; these are not rolled, and 'upgrade apply' refuses a cluster
  # that has them.)
  lifecycle {
    ignore_changes = [source_instance_template]
  }
}

resource "google_compute_instance_group" "group" {
  count     = length(var.nodes) == 0 ? 0 : 1
  name      = var.group_name
  zone      = var.zone
  instances = [for n in google_compute_instance_from_template.node : n.self_link]
  dynamic "named_port" {
    for_each = var.named_ports
    content {
      name = named_port.key
      port = named_port.value
    }
  }
}

output "instance_groups" {
  value = google_compute_instance_group.group[*].self_link
}

output "names" {
  value = keys(google_compute_instance_from_template.node)
}
