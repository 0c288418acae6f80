# The outputs every Cloister root module has (the CLI reads exactly these: cli/cloister-create.c).

output "uid" {
  value       = local.uid
  description = "The cluster's uid: every resource is labelled cloister-uid=<uid>."
}

output "name" {
  value       = local.name
  description = "The prefix of every resource's name."
}

output "endpoint" {
  value       = local.endpoint
  description = "The load balancer's address: API server on 6443, bootstrapper (init, join, recovery) on 9000."
}

output "instance_groups" {
  value       = [module.control_plane.name, module.worker.name]
  description = "The instance groups (control plane, workers)."
}

output "tee" {
  value       = var.tee
  description = "The TEE every node runs in."
}

output "image_id" {
  value       = var.image_file == "" ? var.image_id : module.image[0].image_id
  description = "The image the nodes boot."
}

output "cleanup_filter" {
  value       = "cloister-uid=${local.uid}"
  description = "What finds every resource of this cluster (az resource list --tag) if Terraform cannot destroy it."
}
