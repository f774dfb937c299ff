//! The OpenAPI document of `GET /v1/openapi.json`, built from the route table
//! ([`super::routes::ROUTES`]) that the router is built from, with the request bodies'
//! schemas derived from their Rust types (utoipa).

use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, Content, HttpMethod, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder,
    Paths, Required, ResponseBuilder, Type,
};
use utoipa::PartialSchema;

use super::routes::{Action, ClearBody, MaintenanceBody, SwitchoverBody, ROUTES};

/// The document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for route in ROUTES {
        let mut operation = OperationBuilder::new()
            .operation_id(Some(format!("{:?}", route.action).to_lowercase()))
            .summary(Some(route.summary))
            .response("200", ResponseBuilder::new().description("done"));
        for part in route.path.split('/') {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
        }
        if route.action == Action::Events {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("since")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some("entries with a greater id (default 0: from the start)"))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer))),
            );
        }
        let body = match route.action {
            Action::Switchover => Some((SwitchoverBody::schema(), Required::False)),
            Action::Maintenance => Some((MaintenanceBody::schema(), Required::True)),
            Action::Clear => Some((ClearBody::schema(), Required::False)),
            _ => None,
        };
        if let Some((schema, required)) = body {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(required))
                    .content("application/json", Content::new(Some(schema)))
                    .build(),
            ));
        }
        if let Some(role) = route.need {
            operation = operation
                .description(Some(format!("Needs a bearer token of role {role} or above.")))
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response("401", ResponseBuilder::new().description("no token, or a bad one"))
                .response("403", ResponseBuilder::new().description("the role is too low"))
                .response("429", ResponseBuilder::new().description("too many requests"));
        }
        let method = match route.method {
            "GET" => HttpMethod::Get,
            _ => HttpMethod::Post,
        };
        paths.add_path_operation(route.path, vec![method], operation.build());
    }
    let bearer = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("tandem")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("The HTTPS API of a tandem node")),
        )
        .paths(paths)
        .components(Some(ComponentsBuilder::new().security_scheme("bearer", bearer).build()))
        .build()
}
