# Pinned to the provider versions the offline schema check validates against
# (terraform/tools/schemas/): a newer provider may accept or mean something else.
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
  }
}
